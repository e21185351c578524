package registry

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Config configures the registry service.
type Config struct {
	// MaxArtifactBytes caps one model version's artifact.
	MaxArtifactBytes int64 `yaml:"max_artifact_bytes"`
	// MaxDatasetBytes caps one uploaded dataset version.
	MaxDatasetBytes int64 `yaml:"max_dataset_bytes"`
	// ChunkBytes is the size of the chunks streamed to downloaders.
	ChunkBytes int `yaml:"chunk_bytes"`
	// GCInterval is how often unreferenced blobs are looked for.
	GCInterval time.Duration `yaml:"gc_interval"`
	// GCGrace keeps unreferenced blobs younger than this (uploads in flight).
	GCGrace time.Duration `yaml:"gc_grace"`
	// ImportRoots are the directories ImportModelVersion may read files
	// below; without any, importing from the registry's disk is off.
	ImportRoots []string `yaml:"import_roots"`
}

// RegisterFlags registers the flags under the `registry.` prefix; it holds
// the only defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Int64Var(&c.MaxArtifactBytes, "registry.max-artifact-bytes", 10<<30, "largest model artifact accepted")
	fs.Int64Var(&c.MaxDatasetBytes, "registry.max-dataset-bytes", 2<<30, "largest dataset upload accepted")
	fs.IntVar(&c.ChunkBytes, "registry.chunk-bytes", 1<<20, "size of streamed download chunks")
	fs.DurationVar(&c.GCInterval, "registry.gc-interval", 10*time.Minute, "interval of the unreferenced-blob sweep")
	fs.DurationVar(&c.GCGrace, "registry.gc-grace", time.Hour, "age under which an unreferenced blob is kept")
	fs.Var((*pathList)(&c.ImportRoots), "registry.import-roots",
		"comma-separated directories whose files `model version import --server-path` may register (off when empty)")
}

// pathList is a comma-separated list flag.
type pathList []string

func (l *pathList) String() string { return strings.Join(*l, ",") }

func (l *pathList) Set(s string) error {
	*l = nil
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case c.MaxArtifactBytes <= 0:
		return fmt.Errorf("registry.max-artifact-bytes: must be positive, got %d", c.MaxArtifactBytes)
	case c.MaxDatasetBytes <= 0:
		return fmt.Errorf("registry.max-dataset-bytes: must be positive, got %d", c.MaxDatasetBytes)
	case c.ChunkBytes < 1<<10 || c.ChunkBytes > 4<<20:
		return fmt.Errorf("registry.chunk-bytes: must be within 1 KiB and 4 MiB, got %d", c.ChunkBytes)
	case c.GCInterval <= 0:
		return fmt.Errorf("registry.gc-interval: must be positive, got %s", c.GCInterval)
	case c.GCGrace < 0:
		return fmt.Errorf("registry.gc-grace: must not be negative, got %s", c.GCGrace)
	}
	for _, r := range c.ImportRoots {
		if !filepath.IsAbs(r) {
			return fmt.Errorf("registry.import-roots: %q must be an absolute directory", r)
		}
		if filepath.Clean(r) == "/" {
			return fmt.Errorf("registry.import-roots: %q would open the whole disk; name the directories that hold models", r)
		}
	}
	return nil
}

// DefaultConfig returns the flag defaults (for tests and embedding).
func DefaultConfig() Config {
	var c Config
	c.RegisterFlags(flag.NewFlagSet("", flag.ContinueOnError))
	return c
}
