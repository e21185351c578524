// Package endpointkeys is the etcd layout of the serving endpoints: the
// one place that builds and parses their keys and checks their values.
// The trainer agent owns it (it writes a ready replica's endpoint under
// its node's lease, and deletes it when the replica stops); the gateway
// reads it to route inference. It imports only the API and the standard
// library, so the gateway never imports the agent.
//
//	/bmaas/v1/endpoints/<deployment>/<replica>   gatewayv1.Endpoint
//
// (<deployment> is "project:name" for a deployment of a project other
// than the default one.)
//
// The value is the binary protobuf encoding of the Endpoint; <replica> is
// the ID of the serving job that runs the replica.
package endpointkeys

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
)

// Prefix holds every endpoint, with its trailing slash.
const Prefix = "/bmaas/v1/endpoints/"

// Key is where a ready replica of a deployment is registered.
func Key(deployment, replica string) string { return Of(deployment) + replica }

// Of is the prefix of a deployment's endpoints. A deployment of a
// project other than the default one ("vision/detect") is keyed
// "vision:detect", as pkg/iam's NameKey keys every qualified name.
func Of(deployment string) string { return Prefix + strings.Replace(deployment, "/", ":", 1) + "/" }

// Parse splits an endpoint key.
func Parse(key string) (deployment, replica string, ok bool) {
	rest, ok := strings.CutPrefix(key, Prefix)
	if !ok {
		return "", "", false
	}
	deployment, replica, ok = strings.Cut(rest, "/")
	if !ok || deployment == "" || replica == "" || strings.Contains(replica, "/") {
		return "", "", false
	}
	return strings.Replace(deployment, ":", "/", 1), replica, true
}

// ErrInvalid is wrapped by Decode for a value that is no usable endpoint.
var ErrInvalid = errors.New("invalid endpoint")

// Encode is the value of an endpoint's key.
func Encode(ep *gatewayv1.Endpoint) ([]byte, error) {
	if err := check(ep); err != nil {
		return nil, err
	}
	b, err := proto.Marshal(ep)
	if err != nil {
		return nil, fmt.Errorf("encode endpoint: %w", err)
	}
	return b, nil
}

// Decode reads an endpoint's value. An endpoint always carries the
// replica's address and its own token (the gateway calls a replica with
// that token, never with the cluster's).
func Decode(b []byte) (*gatewayv1.Endpoint, error) {
	ep := &gatewayv1.Endpoint{}
	if err := proto.Unmarshal(b, ep); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := check(ep); err != nil {
		return nil, err
	}
	return ep, nil
}

func check(ep *gatewayv1.Endpoint) error {
	switch {
	case ep.GetAddress() == "":
		return fmt.Errorf("%w: no address", ErrInvalid)
	case ep.GetToken() == "":
		return fmt.Errorf("%w: no replica token", ErrInvalid)
	}
	return nil
}
