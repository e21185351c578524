package traineragent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/runtimes"
	"github.com/bmaas/bmaas/pkg/sandbox"
	"github.com/bmaas/bmaas/services/traineragent/endpointkeys"
)

// The field a process server's errors name, as the deployment shows it.
const serverField = "runtime.server"

// serverProc is a prepared process server: what each start runs.
type serverProc struct {
	rt      *schedulerv1.ServingRuntime
	spec    sandbox.Spec
	probe   runtimes.Probe
	check   readinessCheck
	closeFn func()
	ep      *gatewayv1.Endpoint
	key     string
}

// runProcessServer runs a replica whose runtime is a process server
// (spec.serving.server): the serving contract's model directory, ports
// and environment, in the sandbox as a process task runs; its endpoint
// registered once its readiness probe passes; restarted in place with
// back-off when it exits; stopped (after leaving the routing table) when
// the assignment goes.
func (w *worker) runProcessServer(sk *sink, rt *schedulerv1.ServingRuntime) (int64, error) {
	p, err := w.prepareServer(sk, rt)
	if err != nil {
		return 0, err
	}
	defer p.closeFn()
	return 0, w.superviseServer(sk, p)
}

// prepareServer checks the server's command, fetches its code and the
// model, and renders its command line and sandbox.
func (w *worker) prepareServer(sk *sink, rt *schedulerv1.ServingRuntime) (*serverProc, error) {
	s := rt.GetServer()
	if strings.TrimSpace(s.GetCommand()) == "" {
		return nil, apierr.Invalid(serverField+".command", "required: the server's command")
	}
	if err := w.s.box.Err(); err != nil {
		return nil, sandboxErr(err)
	}
	cwd, err := w.serverDir(sk, s)
	if err != nil {
		return nil, err
	}
	path, err := w.lookCommand(s.Command, cwd)
	if err != nil {
		return nil, apierr.Invalid(serverField+".command", "%v", err)
	}
	model := w.a.GetSpec().GetModel()
	v, artifact, err := w.downloadModel(model, rt.Version)
	if err != nil {
		return nil, err
	}
	modelDir := filepath.Join(w.dir, "model")
	if err := prepareModelDir(modelDir, artifact, v.GetFilename(),
		extractLimits{bytes: w.s.cfg.MaxExtractBytes, entries: w.s.cfg.MaxExtractEntries}); err != nil {
		return nil, fmt.Errorf("model %s version %d: %w", model, rt.Version, err)
	}
	token, err := replicaToken()
	if err != nil {
		return nil, err
	}
	host, listen := w.replicaHost()
	httpPort, grpcPort, err := freePorts(listen)
	if err != nil {
		return nil, err
	}
	// A runtime's server knows its model by the deployment's bare name;
	// the gateway calls it so.
	_, name := iam.SplitName(rt.Deployment)
	vars := runtimes.Vars{ModelDir: modelDir, ModelName: name, ModelVersion: rt.Version,
		HTTPPort: httpPort, GRPCPort: grpcPort, Params: rt.Parameters, GPUs: w.a.GpuIndices, Token: token}
	args, env, err := runtimes.Render(s, vars)
	if err != nil {
		return nil, err
	}
	if err := w.s.box.Own(w.dir); err != nil {
		return nil, fmt.Errorf("give the replica's directory to the sandbox's user: %w", err)
	}
	ep := &gatewayv1.Endpoint{Deployment: rt.Deployment, Replica: w.a.JobId, Model: model, Version: rt.Version,
		Node: w.s.cfg.Node, Token: token, Protocols: s.Protocols}
	if runtimes.SpeaksHTTP(s.Protocols) {
		ep.HttpAddress = joinPort(host, httpPort)
	}
	if runtimes.Speaks(s.Protocols, runtimes.ProtocolV2GRPC) {
		ep.Address = joinPort(host, grpcPort)
	} else {
		// An endpoint record always has an address (endpointkeys); the
		// protocols say that this one is HTTP.
		ep.Address = ep.HttpAddress
	}
	p := &serverProc{rt: rt, probe: runtimes.ProbeDefaults(s.ReadinessProbe), ep: ep,
		key: endpointkeys.Key(rt.Deployment, w.a.JobId), closeFn: func() {}}
	// The agent probes the server where it listens: loopback when it
	// listens there, else the advertised host.
	probeHost := host
	if listen == "" {
		probeHost = "127.0.0.1"
	}
	if p.probe.GRPC {
		conn, err := dialProbe(joinPort(probeHost, grpcPort))
		if err != nil {
			return nil, fmt.Errorf("readiness probe: %w", err)
		}
		p.check, p.closeFn = grpcCheck(conn, token), func() { _ = conn.Close() }
	} else {
		p.check = httpCheck(&http.Client{}, joinPort(probeHost, httpPort), p.probe.HTTPPath, token)
	}
	p.spec = w.serverSandbox(s, cwd, path, args, append(w.serverEnv(), append(runtimes.ContractEnv(vars), env...)...),
		w.modelDir(artifact))
	sk.logf("server %s for %s version %d as %q: HTTP port %d, gRPC port %d", path, model, rt.Version, rt.Deployment, httpPort, grpcPort)
	return p, nil
}

// serverDir is the server's working directory: its code bundle,
// unpacked, or its workdir on the node, else the replica's directory.
func (w *worker) serverDir(sk *sink, s *schedulerv1.ProcessServer) (string, error) {
	switch {
	case s.CodeBundleSha256 != "":
		dir := filepath.Join(w.dir, "code")
		ctx, cancel := contextFor(w)
		defer cancel()
		reg := w.s.registry()
		if err := w.fetchArchive(dir, func(f *os.File) error { return reg.downloadBundle(ctx, s.CodeBundleSha256, f) }); err != nil {
			return "", apierr.Invalid(serverField+".code_bundle_sha256", "code bundle %s: %v", s.CodeBundleSha256, err)
		}
		sk.logf("code bundle %s extracted", s.CodeBundleSha256)
		return dir, nil
	case s.Workdir != "":
		if fi, err := os.Stat(s.Workdir); err != nil || !fi.IsDir() {
			return "", apierr.Invalid(serverField+".workdir", "%s: not a directory on node %s", s.Workdir, w.s.cfg.Node)
		}
		return s.Workdir, nil
	}
	return w.dir, nil
}

// serverEnv is the base of a server's environment: nothing of the
// agent's.
func (w *worker) serverEnv() []string {
	return []string{"PATH=" + w.s.taskPATH(), "HOME=" + w.dir, "LANG=C.UTF-8", "PYTHONUNBUFFERED=1"}
}

// serverSandbox is the sandbox of a process server, as a process task's:
// its directory writable, its workdir, command root and model cache entry
// read-only, the data and work directories and the secrets masked, its
// GPUs' devices and its resource request as limits.
func (w *worker) serverSandbox(s *schedulerv1.ProcessServer, cwd, path string, args, env []string, modelCache string) sandbox.Spec {
	ro := nonEmpty(s.Workdir, modelCache)
	if root := commandRoot(path); root != "" && !within(path, w.dir) && !within(path, s.Workdir) {
		ro = append(ro, root)
	}
	res := w.a.GetSpec().GetResources()
	return sandbox.Spec{
		Name: fmt.Sprintf("%s-%s-r%d-a%d", w.s.cfg.Node, w.a.JobId, w.a.Rank, w.a.Attempt),
		Path: path, Args: args, Env: env, Dir: cwd,
		Writable: []string{w.dir}, ReadOnly: ro,
		Mask:    append([]string{w.s.cfg.DataDir, w.s.cfg.workDir()}, w.s.cfg.Secrets...),
		Devices: sandbox.GPUDevices(w.a.GpuIndices, exists),
		Limits:  sandbox.Limits{MemoryBytes: res.GetMemoryBytes(), CPUMillis: cpuQuota(res)},
	}
}

// serverRun is one started server process.
type serverRun struct {
	p      *sandbox.Process
	waited chan struct{}
	exit   error // set before waited closes
}

// startServer starts the server once, its output into the task's log.
func (w *worker) startServer(sk *sink, p *serverProc) (*serverRun, error) {
	lw := &lineWriter{emit: sk.line}
	spec := p.spec
	spec.Stdout, spec.Stderr = lw, lw
	proc, err := w.s.box.Start(spec)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", p.rt.GetServer().GetCommand(), err)
	}
	sk.logf("started server %s (pid %d)", spec.Path, proc.Pid())
	r := &serverRun{p: proc, waited: make(chan struct{})}
	go func() {
		res, err := proc.Wait()
		lw.close()
		r.exit = serverExit(res, err)
		close(r.waited)
	}()
	return r, nil
}

// stop ends the server: SIGTERM, then SIGKILL after grace (at once when
// grace is 0).
func (r *serverRun) stop(grace time.Duration) {
	if grace > 0 {
		r.p.Signal(syscall.SIGTERM)
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-r.waited:
			return
		case <-t.C:
		}
	}
	r.p.Kill()
	<-r.waited
}

// serverExit says how a server process ended: "server exited with
// status 1", with the OOM kill when the kernel killed it.
func serverExit(r sandbox.Result, err error) error {
	msg := fmt.Sprintf("server exited with status %d", r.ExitCode)
	if err != nil && r.ExitCode == 0 {
		msg = fmt.Sprintf("server ended: %v", err)
	}
	if r.OOMKilled {
		msg = oomReason(r) + "; " + msg
	}
	return &exitError{code: r.ExitCode, msg: msg}
}

// serverGrace is the time between SIGTERM and SIGKILL when a server
// stops: its job's termination_grace_seconds, or the agent's stop grace;
// none when the node lost its lease.
func (w *worker) serverGrace() time.Duration {
	if w.fenced.Load() {
		return 0
	}
	if g := w.a.GetSpec().GetTerminationGraceSeconds(); g > 0 {
		return time.Duration(g) * time.Second
	}
	return w.s.cfg.StopGrace
}

// deregister removes the replica's endpoint (within the replica drain).
func (w *worker) deregister(key string) {
	ctx, cancel := context.WithTimeout(context.Background(), w.s.cfg.ReplicaDrain)
	defer cancel()
	_ = w.s.deleteUnderLease(ctx, key)
}

// superviseServer starts the server, waits for its probe, registers its
// endpoint and serves until the assignment goes; a server that exits
// after it was first ready is deregistered at once and started again
// after a back-off. It returns the error that fails the replica: a
// server that never became ready, or one that exited before its first
// readiness.
func (w *worker) superviseServer(sk *sink, p *serverProc) error {
	var (
		bo       backoff
		restarts int32
		served   bool
	)
	for {
		run, err := w.startServer(sk, p)
		if err != nil {
			return err
		}
		err = awaitReadiness(w.ctx, p.probe, p.check, run.waited)
		switch {
		case w.ctx.Err() != nil:
			run.stop(w.serverGrace())
			return nil
		case errors.Is(err, errServerExited) && served:
			// Counted as a restart below, like an exit while serving.
		case errors.Is(err, errServerExited):
			return run.exit
		case err != nil:
			run.stop(w.serverGrace())
			return err
		}
		var readyAt time.Time
		if err == nil {
			readyAt = time.Now()
			sk.logf("server ready (%s)", probeName(p.probe))
			if err := w.registerEndpoint(p.key, p.ep); err != nil {
				run.stop(w.serverGrace())
				return err
			}
			served = true
			w.serving(restarts)
			select {
			case <-w.ctx.Done():
				// Leave the routing table first, then stop the server.
				w.deregister(p.key)
				run.stop(w.serverGrace())
				return nil
			case <-run.waited:
				w.deregister(p.key)
			}
		}
		var readyFor time.Duration
		if !readyAt.IsZero() {
			readyFor = time.Since(readyAt)
		}
		restarts++
		d := bo.delay(readyFor)
		msg := restartMessage(run.exit.Error(), restarts, d)
		sk.logf("%s", msg)
		w.restarting(restarts, msg)
		t := time.NewTimer(d)
		select {
		case <-w.ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// freePorts picks two free TCP ports on host (every interface when
// empty) for the server's HTTP and gRPC ports.
func freePorts(host string) (httpPort, grpcPort int, err error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range 2 {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return 0, 0, fmt.Errorf("pick a port for the server: %w", err)
		}
		ls = append(ls, l)
	}
	return ls[0].Addr().(*net.TCPAddr).Port, ls[1].Addr().(*net.TCPAddr).Port, nil
}
