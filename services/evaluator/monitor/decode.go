package monitor

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"google.golang.org/protobuf/proto"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/serving"
)

// errSchema marks a record whose body does not fit the version's
// signature (a schema violation, counted, never fatal).
var errSchema = errors.New("schema violation")

// decoded is what one logged request held: its input rows by column and
// the predictions answered for them.
type decoded struct {
	rows int
	// num holds the numeric columns (NaN is missing), cat the categorical
	// ones (empty is missing), by column name.
	num map[string][]float64
	cat map[string][]string
	// labels (a classifier) or values (a regressor), one per row, and the
	// classifier's probabilities, rows x classes.
	labels []string
	values []float64
	proba  []float64
	k      int
	// read says the inputs were read (num and cat hold them).
	read bool
}

// decode reads a record's bodies against the version's signature and
// training statistics: always its answer (the predictions, which
// feedback joins), and its inputs when withInputs says so or the answer
// does not give the rows. Records of protocols that carry no tensors
// (the OpenAI routes) decode to no rows.
func decode(rec *gatewayv1.PayloadRecord, v *versionInfo, withInputs bool) (*decoded, error) {
	if len(rec.GetRequest()) == 0 {
		return &decoded{}, nil
	}
	var unmarshalReq func(*inference.ModelInferRequest) error
	resp := &inference.ModelInferResponse{}
	var respErr error
	switch rec.GetProtocol() {
	case "v2-rest":
		unmarshalReq = func(req *inference.ModelInferRequest) error { return serving.DecodeInferRequest(rec.GetRequest(), req) }
		respErr = errNoAnswer
		if len(rec.GetResponse()) > 0 {
			respErr = serving.DecodeInferResponse(rec.GetResponse(), len(rec.GetResponse()), resp)
		}
	case "v2-grpc":
		unmarshalReq = func(req *inference.ModelInferRequest) error { return proto.Unmarshal(rec.GetRequest(), req) }
		respErr = errNoAnswer
		if len(rec.GetResponse()) > 0 {
			respErr = proto.Unmarshal(rec.GetResponse(), resp)
		}
	default:
		return &decoded{}, nil
	}
	d := &decoded{num: map[string][]float64{}, cat: map[string][]string{}}
	if respErr == nil && rec.GetStatus() < 400 {
		d.outputs(resp)
	}
	if !withInputs && d.rows > 0 {
		return d, nil
	}
	req := &inference.ModelInferRequest{}
	if err := unmarshalReq(req); err != nil {
		return nil, fmt.Errorf("%w: %v", errSchema, err)
	}
	if err := d.inputs(req, v); err != nil {
		return nil, err
	}
	d.read = true
	return d, nil
}

// errNoAnswer marks a record logged without its response.
var errNoAnswer = errors.New("no response logged")

// inputs reads the request's tensors: one [rows, columns] tensor per
// input of the signature that names columns, or one tensor per column.
func (d *decoded) inputs(req *inference.ModelInferRequest, v *versionInfo) error {
	byName := map[string]int{}
	for i, in := range req.GetInputs() {
		byName[in.GetName()] = i
	}
	for _, spec := range v.sig.GetInputs() {
		cols := spec.GetColumns()
		i, ok := byName[spec.GetName()]
		if !ok && len(req.GetInputs()) == 1 && len(v.sig.GetInputs()) == 1 {
			i, ok = 0, true
		}
		if ok && len(cols) > 0 {
			if err := d.matrix(req, i, cols, v); err != nil {
				return err
			}
			continue
		}
		for _, c := range cols {
			j, ok := byName[c]
			if !ok {
				return fmt.Errorf("%w: no input %q or column %q", errSchema, spec.GetName(), c)
			}
			if err := d.matrix(req, j, []string{c}, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// matrix reads input i as rows of cols.
func (d *decoded) matrix(req *inference.ModelInferRequest, i int, cols []string, v *versionInfo) error {
	in := req.GetInputs()[i]
	contents := in.GetContents()
	if i < len(req.GetRawInputContents()) {
		c, err := serving.RawContents(in.GetDatatype(), req.GetRawInputContents()[i])
		if err != nil {
			return fmt.Errorf("%w: input %q: %v", errSchema, in.GetName(), err)
		}
		contents = c
	}
	nums, strs := flatten(in.GetDatatype(), contents)
	n := len(nums) + len(strs)
	if n == 0 || n%len(cols) != 0 {
		return fmt.Errorf("%w: input %q has %d values, not rows of %d columns", errSchema, in.GetName(), n, len(cols))
	}
	rows := n / len(cols)
	if d.rows != 0 && d.rows != rows {
		return fmt.Errorf("%w: input %q has %d rows, another %d", errSchema, in.GetName(), rows, d.rows)
	}
	d.rows = rows
	for j, c := range cols {
		categorical := v.kind(c) == commonv1.ValueKind_VALUE_KIND_CATEGORICAL
		for r := range rows {
			k := r*len(cols) + j
			switch {
			case strs != nil && categorical:
				d.cat[c] = append(d.cat[c], strs[k])
			case strs != nil:
				x, err := strconv.ParseFloat(strs[k], 64)
				if err != nil {
					x = math.NaN()
				}
				d.num[c] = append(d.num[c], x)
			case categorical:
				s := ""
				if !math.IsNaN(nums[k]) {
					s = strconv.FormatFloat(nums[k], 'g', -1, 64)
				}
				d.cat[c] = append(d.cat[c], s)
			default:
				d.num[c] = append(d.num[c], nums[k])
			}
		}
	}
	return nil
}

// flatten returns a tensor's values as numbers or, for BYTES, strings.
func flatten(datatype string, c *inference.InferTensorContents) ([]float64, []string) {
	if datatype == serving.BYTES {
		out := make([]string, len(c.GetBytesContents()))
		for i, b := range c.GetBytesContents() {
			out[i] = string(b)
		}
		return nil, out
	}
	var out []float64
	switch {
	case len(c.GetFp64Contents()) > 0:
		out = append(out, c.GetFp64Contents()...)
	case len(c.GetFp32Contents()) > 0:
		for _, x := range c.GetFp32Contents() {
			out = append(out, float64(x))
		}
	case len(c.GetInt64Contents()) > 0:
		for _, x := range c.GetInt64Contents() {
			out = append(out, float64(x))
		}
	case len(c.GetIntContents()) > 0:
		for _, x := range c.GetIntContents() {
			out = append(out, float64(x))
		}
	case len(c.GetUintContents()) > 0:
		for _, x := range c.GetUintContents() {
			out = append(out, float64(x))
		}
	case len(c.GetUint64Contents()) > 0:
		for _, x := range c.GetUint64Contents() {
			out = append(out, float64(x))
		}
	case len(c.GetBoolContents()) > 0:
		for _, x := range c.GetBoolContents() {
			out = append(out, map[bool]float64{true: 1}[x])
		}
	}
	return out, nil
}

// outputs reads the answer's "predictions" (labels or values, one per
// row: they give the rows) and "probabilities" (rows x classes).
func (d *decoded) outputs(resp *inference.ModelInferResponse) {
	var probas []float64
	for i, out := range resp.GetOutputs() {
		contents := out.GetContents()
		if i < len(resp.GetRawOutputContents()) {
			c, err := serving.RawContents(out.GetDatatype(), resp.GetRawOutputContents()[i])
			if err != nil {
				continue
			}
			contents = c
		}
		nums, strs := flatten(out.GetDatatype(), contents)
		switch out.GetName() {
		case "predictions":
			if strs != nil && len(strs) > 0 {
				d.labels = strs
			} else if len(nums) > 0 {
				d.values = nums
			}
		case "probabilities":
			probas = nums
		}
	}
	d.rows = max(len(d.labels), len(d.values))
	if d.rows > 0 && len(probas) > 0 && len(probas)%d.rows == 0 {
		d.proba, d.k = probas, len(probas)/d.rows
	}
}
