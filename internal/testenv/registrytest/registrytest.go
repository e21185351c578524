// Package registrytest runs a real registry service for the tests of the
// services that call it (the scheduler, the trainer agent): on the etcd
// they give it, served on a loopback gRPC port, with its blobs in a
// temporary directory. The registry's own tests build theirs in their
// package; this one imports it. UploadDataset works against any
// registry, a whole cluster's too.
package registrytest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/internal/testenv"
	"github.com/bmaas/bmaas/pkg/blob"
	"github.com/bmaas/bmaas/pkg/membership"
	"github.com/bmaas/bmaas/pkg/store"
	"github.com/bmaas/bmaas/services/registry"
)

// Options says what the registry runs on.
type Options struct {
	// Etcd holds the registry's records (required).
	Etcd *clientv3.Client
	// Events receives the registry's events (version.ready, ...); none
	// are published when nil.
	Events registry.Publisher
	// Member, when set, joins the registry into the service membership
	// under this ID, so that a mesh.Dialer finds it as "registry".
	Member string
}

// Registry is a running registry service.
type Registry struct {
	Service *registry.Service
	Client  registryv1.RegistryServiceClient
	// Addr is the registry's gRPC address.
	Addr string
}

// Start runs a registry until the test ends.
func Start(t testing.TB, o Options) *Registry {
	t.Helper()
	blobs, err := blob.NewLocal(t.TempDir())
	if err != nil {
		t.Fatalf("blob store: %v", err)
	}
	svc, err := registry.New(registry.DefaultConfig(), registry.Deps{Store: store.New(o.Etcd), Blobs: blobs, Events: o.Events})
	if err != nil {
		t.Fatalf("registry: %v", err)
	}
	if err := svc.Start(t.Context()); err != nil {
		t.Fatalf("start registry: %v", err)
	}
	conn := testenv.Serve(t, svc.Register)
	r := &Registry{Service: svc, Client: registryv1.NewRegistryServiceClient(conn), Addr: conn.Target()}
	if o.Member != "" {
		m := membership.Member{ID: o.Member, Service: "registry", Addr: r.Addr}
		if _, err := membership.Join(context.WithoutCancel(t.Context()), o.Etcd, m, 5*time.Second, nil); err != nil {
			t.Fatalf("join registry %s: %v", o.Member, err)
		}
	}
	return r
}

// CreateModel creates the model name.
func (r *Registry) CreateModel(t testing.TB, name string) {
	t.Helper()
	if _, err := r.Client.CreateModel(t.Context(), &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: name}}); err != nil {
		t.Fatalf("create model %s: %v", name, err)
	}
}

// UploadDataset uploads data through c as dataset name (file name
// filename), in chunks of 256 KiB with its digest in the trailer, and
// returns the new dataset version. c may be any registry's client: this
// one's, or a whole cluster's.
func UploadDataset(t testing.TB, c registryv1.RegistryServiceClient, name, filename string, data []byte) *registryv1.DatasetVersion {
	t.Helper()
	st, err := c.UploadDataset(t.Context())
	if err != nil {
		t.Fatalf("upload dataset %s: %v", name, err)
	}
	send := func(req *registryv1.UploadDatasetRequest) {
		if err := st.Send(req); err != nil {
			t.Fatalf("upload dataset %s: %v", name, err)
		}
	}
	send(&registryv1.UploadDatasetRequest{Payload: &registryv1.UploadDatasetRequest_Header{
		Header: &registryv1.UploadDatasetHeader{Name: name, Filename: filename}}})
	for rest := data; len(rest) > 0; {
		n := min(256<<10, len(rest))
		send(&registryv1.UploadDatasetRequest{Payload: &registryv1.UploadDatasetRequest_Chunk{Chunk: rest[:n]}})
		rest = rest[n:]
	}
	sum := sha256.Sum256(data)
	send(&registryv1.UploadDatasetRequest{Payload: &registryv1.UploadDatasetRequest_Trailer{
		Trailer: &registryv1.UploadTrailer{Sha256: hex.EncodeToString(sum[:])}}})
	resp, err := st.CloseAndRecv()
	if err != nil {
		t.Fatalf("upload dataset %s: %v", name, err)
	}
	return resp.Version
}
