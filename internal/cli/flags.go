package cli

import (
	"fmt"
	"strconv"
	"strings"
)

// parseKV parses repeated key=value flag values into a map; flag names the
// flag in errors. A later value for the same key wins.
func parseKV(flag string, values []string) (map[string]string, error) {
	if len(values) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(values))
	for _, v := range values {
		k, val, ok := strings.Cut(v, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, usageErrorf("--%s %q: expected key=value", flag, v)
		}
		out[k] = val
	}
	return out, nil
}

// parseMetrics parses repeated name=number values.
func parseMetrics(flag string, values []string) (map[string]float64, error) {
	kv, err := parseKV(flag, values)
	if err != nil || kv == nil {
		return nil, err
	}
	out := make(map[string]float64, len(kv))
	for k, v := range kv {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return nil, usageErrorf("--%s %s=%q: value is not a number", flag, k, v)
		}
		out[k] = f
	}
	return out, nil
}

// applyLabels merges label edits into labels: `k=v` sets k and `k-`
// removes it (the kubectl form). It returns a new map.
func applyLabels(labels map[string]string, edits []string) (map[string]string, error) {
	out := make(map[string]string, len(labels)+len(edits))
	for k, v := range labels {
		out[k] = v
	}
	for _, e := range edits {
		if k, ok := strings.CutSuffix(e, "-"); ok && !strings.Contains(e, "=") && k != "" {
			delete(out, k)
			continue
		}
		kv, err := parseKV("label", []string{e})
		if err != nil {
			return nil, err
		}
		for k, v := range kv {
			out[k] = v
		}
	}
	return out, nil
}

// labelSelector turns repeated --label k=v filters into the server's
// comma-separated selector.
func labelSelector(values []string) (string, error) {
	kv, err := parseKV("label", values)
	if err != nil {
		return "", err
	}
	parts := make([]string, 0, len(values))
	for _, v := range values {
		k, _, _ := strings.Cut(v, "=")
		k = strings.TrimSpace(k)
		if _, ok := kv[k]; ok {
			parts = append(parts, fmt.Sprintf("%s=%s", k, kv[k]))
			delete(kv, k)
		}
	}
	return strings.Join(parts, ","), nil
}
