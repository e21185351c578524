// Package lane is the inference lane between the gateway and a
// model-server replica: unary calls whose request and response are raw
// protobuf frames, many of them multiplexed on one TCP connection.
//
// A call through the gateway crosses two hops. The first one is the
// client's gRPC call, which has to be gRPC. The second one, the gateway's
// forwarded call to the replica, gains nothing from HTTP/2 (the gateway
// already holds the encoded request and only needs the encoded response
// back) and pays for it on every call: HTTP/2 and HPACK framing, flow
// control, and four goroutine hand-offs (caller to writer, reader to
// handler, handler to writer, reader to caller). The lane does the same
// work with two hand-offs: the caller and the handler write their frames
// themselves (whoever finds the connection idle writes everything queued
// behind it in one system call), and one reader per side hands each
// incoming frame on. Deadlines travel with each call, a caller that gives
// up cancels the handler, and errors keep their gRPC status (code,
// message and details).
//
// The replica still serves KServe v2 over gRPC for everyone else; it
// advertises its lane in its endpoint record and the gateway uses the
// lane when one is advertised.
//
// Wire format. The client opens with Magic, a u16 little-endian length
// and the bearer token (empty when auth is off); a server with a token
// answers a wrong one with a frame of id 0 carrying Unauthenticated and
// hangs up. Every frame then starts with a 9-byte little-endian header:
//
//	u32 size   bytes after the size field (5 + len(body))
//	u32 id     the call, chosen by the client
//	u8  kind   client to server: Method (1..127) or kindCancel;
//	           server to client: the gRPC status code (0 = OK)
//
// A request body is an i64 timeout in microseconds (0: none) and the
// request bytes; a cancel has no body; a response body is the response
// bytes when the code is OK and a google.rpc.Status otherwise.
package lane

import (
	"encoding/binary"
	"fmt"
)

// Magic opens every connection, naming the protocol and its version.
const Magic = "BMLANE/1"

// Method names a call's handler.
type Method uint8

// MethodModelInfer is KServe v2 ModelInfer: the request is a
// ModelInferRequest, the response a ModelInferResponse.
const MethodModelInfer Method = 1

const (
	kindCancel = 0xff

	headerSize  = 9
	timeoutSize = 8

	// DefaultMaxFrame bounds one frame's body (the replica's gRPC limit).
	DefaultMaxFrame = 64 << 20

	maxToken = 4 << 10
)

func putHeader(b []byte, bodyLen int, id uint32, kind byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(5+bodyLen))
	b = binary.LittleEndian.AppendUint32(b, id)
	return append(b, kind)
}

// readHeader parses a frame header into the body length, id and kind.
func readHeader(h []byte, maxFrame int) (int, uint32, byte, error) {
	size := binary.LittleEndian.Uint32(h[0:4])
	if size < 5 {
		return 0, 0, 0, fmt.Errorf("lane: frame size %d is below the header", size)
	}
	body := int(size) - 5
	if body > maxFrame {
		return 0, 0, 0, fmt.Errorf("lane: frame of %d bytes is over the limit of %d", body, maxFrame)
	}
	return body, binary.LittleEndian.Uint32(h[4:8]), h[8], nil
}
