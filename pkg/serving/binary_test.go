package serving_test

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/serving"
)

// mixedRequest holds one input of each datatype the bridge carries.
func mixedRequest() *inference.ModelInferRequest {
	return &inference.ModelInferRequest{ModelName: "m", Id: "7",
		Parameters: map[string]*inference.InferParameter{"k": {ParameterChoice: &inference.InferParameter_StringParam{StringParam: "v"}}},
		Inputs: []*inference.ModelInferRequest_InferInputTensor{
			{Name: "f32", Datatype: "FP32", Shape: []int64{2, 2}, Contents: &inference.InferTensorContents{Fp32Contents: []float32{1.5, -2, 3.25, 1e-7}}},
			{Name: "f64", Datatype: "FP64", Shape: []int64{3}, Contents: &inference.InferTensorContents{Fp64Contents: []float64{0.1, 1.0 / 3, -1e300}}},
			{Name: "i64", Datatype: "INT64", Shape: []int64{2}, Contents: &inference.InferTensorContents{Int64Contents: []int64{math.MaxInt64, -5}}},
			{Name: "s", Datatype: "BYTES", Shape: []int64{2}, Contents: &inference.InferTensorContents{BytesContents: [][]byte{[]byte("a\"é"), {}}}},
		},
		Outputs: []*inference.ModelInferRequest_InferRequestedOutputTensor{{Name: "out"}}}
}

// A request encoded as JSON, all binary, or with the large inputs binary
// decodes back to the same tensors: as contents when all are JSON, as
// raw contents (each input's little-endian bytes) when any is binary.
func TestInferRequestRoundTripsJSONAndBinary(t *testing.T) {
	t.Parallel()
	want := mixedRequest()
	for _, binaryMin := range []int{0, 1, 16} {
		body, hl := serving.AppendInferRequest([]byte("prefix"), want, binaryMin)
		body = body[len("prefix"):]
		var got inference.ModelInferRequest
		require.NoError(t, serving.DecodeInferRequestBinary(body, hl, &got), "binaryMin %d", binaryMin)
		require.Equal(t, "7", got.Id)
		require.Equal(t, "v", got.Parameters["k"].GetStringParam())
		require.Equal(t, "out", got.Outputs[0].Name)
		if binaryMin == 0 {
			require.Equal(t, len(body), hl)
			for i, in := range want.Inputs {
				require.True(t, proto.Equal(in, got.Inputs[i]), "input %d: %v", i, got.Inputs[i])
			}
			continue
		}
		require.Less(t, hl, len(body), "binaryMin %d", binaryMin)
		require.True(t, got.Parameters[serving.ParamBinaryDataOutput].GetBoolParam(), "binary inputs ask binary outputs")
		require.Len(t, got.RawInputContents, len(want.Inputs))
		for i, in := range want.Inputs {
			require.Equal(t, serving.AppendRaw(nil, in.Datatype, in.Contents), got.RawInputContents[i], "input %d", i)
			require.Nil(t, got.Inputs[i].Contents)
			require.NotContains(t, got.Inputs[i].Parameters, serving.ParamBinaryDataSize)
			require.Equal(t, in.Shape, got.Inputs[i].Shape)
		}
	}
	// Raw contents (a gRPC client's) encode as they are.
	raw := mixedRequest()
	for _, in := range raw.Inputs {
		raw.RawInputContents = append(raw.RawInputContents, serving.AppendRaw(nil, in.Datatype, in.Contents))
		in.Contents = nil
	}
	body, hl := serving.AppendInferRequest(nil, raw, 0)
	var got inference.ModelInferRequest
	require.NoError(t, serving.DecodeInferRequestBinary(body, hl, &got))
	for i, in := range mixedRequest().Inputs {
		require.True(t, proto.Equal(in.Contents, got.Inputs[i].Contents), "input %d from raw as JSON: %v", i, got.Inputs[i].Contents)
	}
}

// binaryBody is a request body of one JSON header and binary data.
func binaryBody(header string, data []byte) ([]byte, int) {
	return append([]byte(header), data...), len(header)
}

func f32s(vs ...float32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

// Sizes that do not add up are errors naming the field at fault.
func TestBinaryRequestSizesThatDoNotAddUp(t *testing.T) {
	t.Parallel()
	in := func(datatype, shape string, size any) string {
		s, _ := json.Marshal(size)
		return `{"inputs":[{"name":"x","datatype":"` + datatype + `","shape":` + shape + `,"parameters":{"binary_data_size":` + string(s) + `}}]}`
	}
	for _, c := range []struct {
		header string
		data   []byte
		hl     int
		field  string
	}{
		{header: in("FP32", "[2]", 12), data: f32s(1, 2), field: "inputs[0].parameters.binary_data_size"},
		{header: in("FP32", "[3]", 8), data: f32s(1, 2), field: "inputs[0].parameters.binary_data_size"},
		{header: in("FP32", "[1]", 4), data: f32s(1, 2), field: "body"},
		{header: in("FP32", "[2]", -1), data: f32s(1, 2), field: "inputs[0].parameters.binary_data_size"},
		{header: in("FP32", "[2]", 1.5), data: f32s(1, 2), field: "inputs[0].parameters.binary_data_size"},
		{header: in("FP32", "[2]", "8"), data: f32s(1, 2), field: "inputs[0].parameters.binary_data_size"},
		{header: in("BYTES", "[1]", 6), data: []byte{9, 0, 0, 0, 'a', 'b'}, field: "inputs[0].parameters.binary_data_size"},
		{header: in("BYTES", "[2]", 6), data: []byte{2, 0, 0, 0, 'a', 'b'}, field: "inputs[0].parameters.binary_data_size"},
		{header: in("FP32", "[2]", 8), data: f32s(1, 2), hl: 1 << 20, field: "Inference-Header-Content-Length"},
		{header: `{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1],"parameters":{"binary_data_size":4}}]}`, data: f32s(1), field: "inputs[0].data"},
	} {
		body, hl := binaryBody(c.header, c.data)
		if c.hl != 0 {
			hl = c.hl
		}
		var req inference.ModelInferRequest
		err := serving.DecodeInferRequestBinary(body, hl, &req)
		require.ErrorContains(t, err, c.field+":", c.header)
	}
	_, err := serving.HeaderLength("12x", 100)
	require.ErrorContains(t, err, "Inference-Header-Content-Length:")
	_, err = serving.HeaderLength("101", 100)
	require.ErrorContains(t, err, "Inference-Header-Content-Length:")
	n, err := serving.HeaderLength("", 100)
	require.NoError(t, err)
	require.Equal(t, 100, n)
}

// A binary input and a JSON input together: both reach the request as
// raw contents.
func TestBinaryAndJSONInputsTogether(t *testing.T) {
	t.Parallel()
	body, hl := binaryBody(`{"inputs":[{"name":"a","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}},`+
		`{"name":"b","datatype":"INT64","shape":[1],"data":[3]}]}`, f32s(1, 2))
	var req inference.ModelInferRequest
	require.NoError(t, serving.DecodeInferRequestBinary(body, hl, &req))
	require.Equal(t, [][]byte{f32s(1, 2), {3, 0, 0, 0, 0, 0, 0, 0}}, req.RawInputContents)
	require.Nil(t, req.Inputs[0].Parameters)
}

func mixedResponse() *inference.ModelInferResponse {
	return &inference.ModelInferResponse{ModelName: "m", ModelVersion: "3", Id: "7",
		Outputs: []*inference.ModelInferResponse_InferOutputTensor{
			{Name: "f32", Datatype: "FP32", Shape: []int64{2}, Contents: &inference.InferTensorContents{Fp32Contents: []float32{1.5, -2}}},
			{Name: "f64", Datatype: "FP64", Shape: []int64{1}, Contents: &inference.InferTensorContents{Fp64Contents: []float64{1.0 / 3}}},
			{Name: "i64", Datatype: "INT64", Shape: []int64{1}, Contents: &inference.InferTensorContents{Int64Contents: []int64{-9}}},
			{Name: "s", Datatype: "BYTES", Shape: []int64{1}, Contents: &inference.InferTensorContents{BytesContents: [][]byte{[]byte("yes")}}},
		}}
}

// A response written with some outputs binary reads back to the same
// numbers as the JSON one: the JSON response as contents, the binary one
// as raw contents.
func TestInferResponseRoundTripsJSONAndBinary(t *testing.T) {
	t.Parallel()
	want := mixedResponse()
	body, hl := serving.AppendInferResponseBinary(nil, want, nil)
	require.Equal(t, len(body), hl)
	var got inference.ModelInferResponse
	require.NoError(t, serving.DecodeInferResponse(body, hl, &got))
	require.Equal(t, "3", got.ModelVersion)
	for i, o := range want.Outputs {
		require.True(t, proto.Equal(o, got.Outputs[i]), "output %d: %v", i, got.Outputs[i])
	}

	binaryOut := func(name string) bool { return name != "s" }
	body, hl = serving.AppendInferResponseBinary(nil, want, binaryOut)
	require.Less(t, hl, len(body))
	var header map[string]any
	require.NoError(t, json.Unmarshal(body[:hl], &header))
	f32 := header["outputs"].([]any)[0].(map[string]any)
	require.NotContains(t, f32, "data")
	require.Equal(t, map[string]any{"binary_data_size": 8.0}, f32["parameters"])
	require.Equal(t, f32s(1.5, -2), body[hl:hl+8], "the first binary output leads the binary part")

	got.Reset()
	require.NoError(t, serving.DecodeInferResponse(body, hl, &got))
	require.Len(t, got.RawOutputContents, 4)
	for i, o := range want.Outputs {
		require.Equal(t, serving.AppendRaw(nil, o.Datatype, o.Contents), got.RawOutputContents[i], "output %d", i)
		c, err := serving.RawContents(o.Datatype, got.RawOutputContents[i])
		require.NoError(t, err)
		require.True(t, proto.Equal(o.Contents, c), "output %d: %v", i, c)
	}

	// Raw outputs (a replica's) are written binary as they are, and as
	// numbers in JSON.
	raw := mixedResponse()
	for _, o := range raw.Outputs {
		raw.RawOutputContents = append(raw.RawOutputContents, serving.AppendRaw(nil, o.Datatype, o.Contents))
		o.Contents = nil
	}
	rb, rhl := serving.AppendInferResponseBinary(nil, raw, binaryOut)
	require.Equal(t, body, rb)
	require.Equal(t, hl, rhl)

	for _, bad := range []struct{ header, data string }{
		{`{"outputs":[{"name":"x","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":8}}]}`, "\x00\x00\x00\x00"},
		{`{"outputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}]}`, "\x00"},
		{`{"outputs":[{"name":"x","datatype":"FP32","shape":[1],"data":["a"]}]}`, ""},
		{`not json`, ""},
	} {
		got.Reset()
		require.Error(t, serving.DecodeInferResponse([]byte(bad.header+bad.data), len(bad.header), &got), bad.header)
	}
}

// binary_data_output asks every output, an output's binary_data asks it
// or not over that; neither is no binary output.
func TestBinaryOutputs(t *testing.T) {
	t.Parallel()
	boolP := func(v bool) map[string]*inference.InferParameter {
		return map[string]*inference.InferParameter{"x": {ParameterChoice: &inference.InferParameter_BoolParam{BoolParam: v}}}
	}
	rename := func(m map[string]*inference.InferParameter, k string) map[string]*inference.InferParameter {
		m[k] = m["x"]
		delete(m, "x")
		return m
	}
	req := &inference.ModelInferRequest{}
	require.Nil(t, serving.BinaryOutputs(req))
	req.Parameters = rename(boolP(true), serving.ParamBinaryDataOutput)
	req.Outputs = []*inference.ModelInferRequest_InferRequestedOutputTensor{{Name: "a", Parameters: rename(boolP(false), serving.ParamBinaryData)}}
	f := serving.BinaryOutputs(req)
	require.False(t, f("a"))
	require.True(t, f("b"))
	req.Parameters = nil
	req.Outputs = append(req.Outputs, &inference.ModelInferRequest_InferRequestedOutputTensor{Name: "c", Parameters: rename(boolP(true), serving.ParamBinaryData)})
	f = serving.BinaryOutputs(req)
	require.False(t, f("a"))
	require.False(t, f("b"))
	require.True(t, f("c"))
}

// Every datatype's raw form reads back to its contents, and CheckRaw
// takes exactly the bytes a shape needs.
func TestRawForms(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		datatype string
		c        *inference.InferTensorContents
	}{
		{"BOOL", &inference.InferTensorContents{BoolContents: []bool{true, false}}},
		{"INT8", &inference.InferTensorContents{IntContents: []int32{-128, 127}}},
		{"INT16", &inference.InferTensorContents{IntContents: []int32{-32768, 5}}},
		{"INT32", &inference.InferTensorContents{IntContents: []int32{math.MinInt32, 7}}},
		{"UINT8", &inference.InferTensorContents{UintContents: []uint32{255, 0}}},
		{"UINT16", &inference.InferTensorContents{UintContents: []uint32{65535, 1}}},
		{"UINT32", &inference.InferTensorContents{UintContents: []uint32{math.MaxUint32, 2}}},
		{"INT64", &inference.InferTensorContents{Int64Contents: []int64{math.MinInt64, 3}}},
		{"UINT64", &inference.InferTensorContents{Uint64Contents: []uint64{math.MaxUint64, 4}}},
		{"FP32", &inference.InferTensorContents{Fp32Contents: []float32{float32(math.Inf(-1)), 0.5}}},
		{"FP64", &inference.InferTensorContents{Fp64Contents: []float64{math.SmallestNonzeroFloat64, 2}}},
		{"BYTES", &inference.InferTensorContents{BytesContents: [][]byte{[]byte("xy"), []byte("z")}}},
	} {
		raw := serving.AppendRaw(nil, c.datatype, c.c)
		require.Len(t, raw, serving.RawSize(c.datatype, c.c), c.datatype)
		require.NoError(t, serving.CheckRaw(c.datatype, []int64{2}, raw), c.datatype)
		require.Error(t, serving.CheckRaw(c.datatype, []int64{3}, raw), c.datatype)
		got, err := serving.RawContents(c.datatype, raw)
		require.NoError(t, err)
		require.True(t, proto.Equal(c.c, got), "%s: %v", c.datatype, got)
	}
	require.Error(t, serving.CheckRaw("FP32", []int64{-1}, nil))
	require.Error(t, serving.CheckRaw("COMPLEX", []int64{1}, nil))
	_, err := serving.RawContents("FP16", []byte{0, 0})
	require.Error(t, err)
}

// Integers in JSON data keep their exact values, beyond float64's 53 bits.
func TestJSONIntegersAreExact(t *testing.T) {
	t.Parallel()
	var req inference.ModelInferRequest
	body := `{"inputs":[{"name":"i","datatype":"INT64","shape":[3],"data":[` + strconv.FormatInt(math.MaxInt64, 10) + `,-3,1e3]},` +
		`{"name":"u","datatype":"UINT64","shape":[1],"data":[` + strconv.FormatUint(math.MaxUint64, 10) + `]},` +
		`{"name":"n","datatype":"UINT8","shape":[1],"data":[-1]}]}`
	err := serving.DecodeInferRequest([]byte(body), &req)
	require.ErrorContains(t, err, "inputs[2].data:")
	req.Reset()
	body = body[:len(body)-len(`,{"name":"n","datatype":"UINT8","shape":[1],"data":[-1]}]}`)] + "]}"
	require.NoError(t, serving.DecodeInferRequest([]byte(body), &req))
	require.Equal(t, []int64{math.MaxInt64, -3, 1000}, req.Inputs[0].Contents.Int64Contents)
	require.Equal(t, []uint64{math.MaxUint64}, req.Inputs[1].Contents.Uint64Contents)
}

// FuzzDecodeInferRequestBinary: any body and header length either
// decode into a request that marshals, or fail with an error; nothing
// panics, whatever the sizes say.
func FuzzDecodeInferRequestBinary(f *testing.F) {
	body, hl := serving.AppendInferRequest(nil, mixedRequest(), 1)
	f.Add(body, hl)
	f.Add([]byte(`{"inputs":[{"name":"s","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":5}}]}`+"\x01\x00\x00\x00a"), 93)
	f.Add([]byte(`{"inputs":[{"name":"x","datatype":"FP16","shape":[1],"parameters":{"binary_data_size":2}}]}`+"\x00\x3c"), 92)
	f.Fuzz(func(t *testing.T, body []byte, hl int) {
		var req inference.ModelInferRequest
		if err := serving.DecodeInferRequestBinary(body, hl, &req); err != nil {
			return
		}
		if _, err := proto.Marshal(&req); err != nil {
			t.Fatalf("decoded request does not marshal: %v", err)
		}
	})
}

// FuzzDecodeInferResponse: any answer a replica sends either decodes or
// fails with an error; nothing panics.
func FuzzDecodeInferResponse(f *testing.F) {
	body, hl := serving.AppendInferResponseBinary(nil, mixedResponse(), func(name string) bool { return name != "f64" })
	f.Add(body, hl)
	body, hl = serving.AppendInferResponseBinary(nil, mixedResponse(), nil)
	f.Add(body, hl)
	f.Fuzz(func(t *testing.T, body []byte, hl int) {
		var resp inference.ModelInferResponse
		if err := serving.DecodeInferResponse(body, hl, &resp); err != nil {
			return
		}
		if _, err := proto.Marshal(&resp); err != nil {
			t.Fatalf("decoded response does not marshal: %v", err)
		}
	})
}
