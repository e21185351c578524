// Package runtimes holds what the gateway and the agent share about
// serving runtimes: the protocols a model server may speak, the model
// formats a runtime may serve, the built-in runtimes, the checks of a
// process server's specification, and the serving contract a process
// replica runs under (its templated arguments and its environment).
//
// The gateway validates a Runtime with Validate when it is created; the
// agent renders the server's command line with Render and ContractEnv when
// it starts a replica. Both read the same rules from here.
package runtimes

import (
	"slices"
	"strings"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
)

// The protocols a model server speaks.
const (
	// ProtocolV2GRPC is KServe v2 gRPC on BMAAS_GRPC_PORT.
	ProtocolV2GRPC = "v2-grpc"
	// ProtocolV2REST is KServe v2 REST on BMAAS_HTTP_PORT.
	ProtocolV2REST = "v2-rest"
	// ProtocolOpenAI is the OpenAI-compatible HTTP API on BMAAS_HTTP_PORT.
	ProtocolOpenAI = "openai"
)

// Protocols lists the protocols a server may speak.
func Protocols() []string { return []string{ProtocolV2GRPC, ProtocolV2REST, ProtocolOpenAI} }

// The built-in runtimes: bmaas's own server (pkg/replica), in process or
// as `bmaas replica`.
const (
	Native = "native"
	ONNX   = "onnx"
)

// The model format names a runtime serves.
const (
	FormatNative  = "native"
	FormatONNX    = "onnx"
	FormatPyTorch = "pytorch"
	FormatOther   = "other"
)

// Formats lists the format names a runtime may serve.
func Formats() []string { return []string{FormatNative, FormatONNX, FormatPyTorch, FormatOther} }

// FormatName is a registry format's name as runtimes list it; an
// unspecified format is "other".
func FormatName(f registryv1.ModelFormat) string {
	switch f {
	case registryv1.ModelFormat_MODEL_FORMAT_NATIVE:
		return FormatNative
	case registryv1.ModelFormat_MODEL_FORMAT_ONNX:
		return FormatONNX
	case registryv1.ModelFormat_MODEL_FORMAT_PYTORCH:
		return FormatPyTorch
	default:
		return FormatOther
	}
}

// Builtin reports whether name is a built-in runtime.
func Builtin(name string) bool { return name == Native || name == ONNX }

// BuiltinRuntimes returns the records of the built-in runtimes, as the
// gateway lists them: each serves its own format at priority 0 and speaks
// v2-grpc (and bmaas's lane).
func BuiltinRuntimes() []*gatewayv1.Runtime {
	return []*gatewayv1.Runtime{
		{Name: Native, Builtin: true, Formats: []*gatewayv1.RuntimeFormat{{Name: FormatNative}}},
		{Name: ONNX, Builtin: true, Formats: []*gatewayv1.RuntimeFormat{{Name: FormatONNX}}},
	}
}

// Speaks reports whether protocols holds p.
func Speaks(protocols []string, p string) bool { return slices.Contains(protocols, p) }

// SpeaksHTTP reports whether a server with these protocols has an HTTP
// port the gateway calls.
func SpeaksHTTP(protocols []string) bool {
	return Speaks(protocols, ProtocolV2REST) || Speaks(protocols, ProtocolOpenAI)
}

// list joins names for a message: "a, b or c".
func list(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
