package app

import (
	"encoding/json"
	"errors"
	"io"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
)

// strictJSON is grpc-gateway's JSON marshaler with a decoder that refuses
// a body holding more than one JSON value: grpc-gateway reads the first
// value off a stream and would ignore `{"name":"a"} junk` or
// `{"name":"a"}{"name":"b"}` after it.
type strictJSON struct{ *runtime.JSONPb }

func (j strictJSON) NewDecoder(r io.Reader) runtime.Decoder {
	return strictDecoder{runtime.DecoderWrapper{Decoder: json.NewDecoder(r), UnmarshalOptions: j.UnmarshalOptions}}
}

type strictDecoder struct{ runtime.DecoderWrapper }

// errTrailing is a body with more after its JSON value.
var errTrailing = errors.New("body: unexpected data after the JSON value")

func (d strictDecoder) Decode(v any) error {
	if err := d.DecoderWrapper.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return errTrailing
	}
	return nil
}
