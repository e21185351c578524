package grpcsrv

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// RawFrame is a gRPC message kept as its wire bytes: a proxy receives
// and sends it without decoding it. Only Codec knows it; a handler that
// takes or returns a *RawFrame must be served or called with Codec.
//
// The frame holds one reference to its buffers; Free drops it. Sending a
// frame takes a reference of its own, so a frame can be sent several
// times (a retry on another backend) and freed once after the last send.
type RawFrame struct {
	data mem.BufferSlice
}

// FrameOf makes a frame of buf, taking over the caller's reference.
func FrameOf(buf mem.Buffer) *RawFrame { return &RawFrame{data: mem.BufferSlice{buf}} }

// Len is the frame's size in bytes.
func (f *RawFrame) Len() int { return f.data.Len() }

// Bytes returns the frame's bytes: its own buffer when it is in one piece
// (read only, valid until Free), a copy otherwise.
func (f *RawFrame) Bytes() []byte {
	if len(f.data) == 1 {
		return f.data[0].ReadOnlyData()
	}
	return f.data.Materialize()
}

// Free releases the frame's buffers to their pool.
func (f *RawFrame) Free() {
	f.data.Free()
	f.data = nil
}

// Codec is the "proto" codec with one addition: a *RawFrame passes
// through as it is. Every other message goes to grpc's proto codec, so
// services that never see a RawFrame behave exactly as without it.
type Codec struct {
	proto encoding.CodecV2
}

// NewCodec wraps grpc's registered proto codec.
func NewCodec() Codec { return Codec{proto: encoding.GetCodecV2(protocodec.Name)} }

// Name is the content-subtype the codec answers for.
func (Codec) Name() string { return protocodec.Name }

// Marshal sends a frame's bytes (grpc frees its reference after writing)
// and encodes any other message.
func (c Codec) Marshal(v any) (mem.BufferSlice, error) {
	if f, ok := v.(*RawFrame); ok {
		f.data.Ref()
		return f.data, nil
	}
	return c.proto.Marshal(v)
}

// Unmarshal keeps a reference to the received bytes in a frame and
// decodes into any other message.
func (c Codec) Unmarshal(data mem.BufferSlice, v any) error {
	if f, ok := v.(*RawFrame); ok {
		data.Ref()
		f.data.Free()
		f.data = data
		return nil
	}
	return c.proto.Unmarshal(data, v)
}

// ScanStrings reads the string fields numbered a and b at the top level
// of a protobuf message (the last occurrence wins, as when decoding)
// without decoding the rest.
func ScanStrings(msg []byte, a, b protowire.Number) (string, string, error) {
	var sa, sb string
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return "", "", fmt.Errorf("bad tag: %w", protowire.ParseError(n))
		}
		msg = msg[n:]
		if typ == protowire.BytesType && (num == a || num == b) {
			v, m := protowire.ConsumeBytes(msg)
			if m < 0 {
				return "", "", fmt.Errorf("field %d: %w", num, protowire.ParseError(m))
			}
			if num == a {
				sa = string(v)
			} else {
				sb = string(v)
			}
			msg = msg[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, msg)
		if m < 0 {
			return "", "", fmt.Errorf("field %d: %w", num, protowire.ParseError(m))
		}
		msg = msg[m:]
	}
	return sa, sb, nil
}
