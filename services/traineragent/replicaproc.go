package traineragent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/pki"
	"github.com/bmaas/bmaas/pkg/replica"
	"github.com/bmaas/bmaas/pkg/sandbox"
)

// The files of a replica process in its task directory.
const (
	replicaConfigFile = "replica.json"
	replicaReadyFile  = "ready.json"
	replicaTLSDir     = "tls"
)

// startReplicaProcess runs the replica as `bmaas replica` in a sandbox,
// as a process task runs: as the sandbox's user, seeing only its own
// directory (the model, its configuration, its TLS files) and the
// system, with its resource request enforced. It returns once the
// replica serves (its ready file), or with the replica's end.
func (w *worker) startReplicaProcess(sk *sink, o replica.Options, host string) (*replicaRun, error) {
	if err := w.s.box.Err(); err != nil {
		return nil, sandboxErr(err)
	}
	bin, err := exec.LookPath(w.s.cfg.ReplicaBinary)
	if err == nil {
		bin, err = filepath.Abs(bin)
	}
	if err != nil {
		return nil, fmt.Errorf("trainer-agent.replica-binary %q: %w", w.s.cfg.ReplicaBinary, err)
	}
	c := replica.Config{ModelPath: o.ModelPath, Format: o.Format, Name: o.Name, Version: o.Version,
		MaxBatchSize: o.Batching.MaxBatchSize, MaxQueueDelayMicros: o.Batching.MaxQueueDelay.Microseconds(),
		ListenHost: o.ListenHost, Token: o.Token, Classes: o.Classes, Logits: o.Logits, ReadyFile: filepath.Join(w.dir, replicaReadyFile)}
	renew, err := w.replicaTLSFiles(&c, host)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(w.dir, replicaConfigFile)
	if err := pki.WriteFile(cfgPath, b, 0o600); err != nil {
		return nil, fmt.Errorf("replica config: %w", err)
	}
	_ = os.Remove(c.ReadyFile)
	if err := w.s.box.Own(w.dir); err != nil {
		return nil, fmt.Errorf("give the replica's directory to the sandbox's user: %w", err)
	}
	lw := &lineWriter{emit: sk.line}
	res := w.a.GetSpec().GetResources()
	p, err := w.s.box.Start(sandbox.Spec{
		Name: fmt.Sprintf("%s-%s-r%d-a%d", w.s.cfg.Node, w.a.JobId, w.a.Rank, w.a.Attempt),
		Path: bin, Args: []string{"replica", "--config", cfgPath},
		Env: []string{"PATH=" + sandboxPath, "HOME=" + w.dir, "LANG=C.UTF-8"}, Dir: w.dir,
		Writable: []string{w.dir}, ReadOnly: nonEmpty(commandRoot(bin), w.modelDir(o.ModelPath)),
		Mask:   append([]string{w.s.cfg.DataDir, w.s.cfg.workDir()}, w.s.cfg.Secrets...),
		Limits: sandbox.Limits{MemoryBytes: res.GetMemoryBytes(), CPUMillis: cpuQuota(res)},
		Stdout: lw, Stderr: lw,
	})
	if err != nil {
		return nil, fmt.Errorf("start the replica: %w", err)
	}
	sk.logf("started replica process %s (pid %d)", bin, p.Pid())
	exited := make(chan error, 1)
	waited := make(chan struct{})
	go func() {
		r, err := p.Wait()
		lw.close()
		exited <- replicaExit(r, err)
		close(waited)
	}()
	stop := func() {
		p.Signal(syscall.SIGTERM)
		t := time.NewTimer(w.s.cfg.StopGrace)
		defer t.Stop()
		select {
		case <-waited:
		case <-t.C:
			p.Kill()
			<-waited
		}
	}
	ready, err := w.awaitReady(c.ReadyFile, waited, exited)
	if err != nil {
		stop()
		return nil, err
	}
	if renew != nil {
		go renew(waited)
	}
	g, l := ready.GRPCPort, ready.LanePort
	return &replicaRun{addr: joinPort(host, g), laneAddr: joinPort(host, l), exited: exited, stop: stop}, nil
}

// replicaProcesses reports whether replicas run as sandboxed processes,
// and why not when they do not.
func (s *Service) replicaProcesses() (bool, string) {
	switch {
	case s.cfg.ReplicaBinary == "":
		return false, "no --trainer-agent.replica-binary"
	case s.deps.TLS != nil && s.deps.CA == nil:
		return false, "over TLS a replica process needs a certificate of its own, and the agent has no --tls.ca-key-file to issue one"
	}
	return true, ""
}

// awaitReady waits for the replica's ready file, its end, or the task's.
func (w *worker) awaitReady(path string, waited <-chan struct{}, exited <-chan error) (replica.Ready, error) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if r, err := replica.ReadReady(path); err == nil {
			return r, nil
		}
		select {
		case <-waited:
			err := <-exited
			if err == nil {
				err = errors.New("the replica process exited before it served")
			}
			return replica.Ready{}, err
		case <-w.ctx.Done():
			return replica.Ready{}, w.ctx.Err()
		case <-tick.C:
		}
	}
}

// replicaExit says how a replica process ended: it never ends on its own.
func replicaExit(r sandbox.Result, err error) error {
	msg := fmt.Sprintf("the replica process exited with status %d", r.ExitCode)
	if err != nil && r.ExitCode == 0 {
		msg = fmt.Sprintf("the replica process ended: %v", err)
	}
	if r.OOMKilled {
		msg = oomReason(r) + "; " + msg
	}
	return &exitError{code: r.ExitCode, msg: msg}
}

// replicaTLSFiles writes, when TLS is on, a certificate of the replica's
// own from the cluster CA, its key and the CA into the replica's
// directory, and returns what renews them while the replica runs.
func (w *worker) replicaTLSFiles(c *replica.Config, host string) (func(done <-chan struct{}), error) {
	if w.s.deps.TLS == nil {
		return nil, nil
	}
	if w.s.deps.CA == nil {
		return nil, errors.New("a replica process needs a certificate of its own over TLS: give the agent --tls.ca-key-file")
	}
	dir := filepath.Join(w.dir, replicaTLSDir)
	c.TLSCert, c.TLSKey, c.TLSCA = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "ca.crt")
	if err := pki.WriteFile(c.TLSCA, w.s.deps.CA.PEM, 0o644); err != nil {
		return nil, err
	}
	issue := func() error {
		l, err := w.s.deps.CA.Issue(w.replicaLeaf(host))
		if err != nil {
			return fmt.Errorf("replica certificate: %w", err)
		}
		if err := pki.WriteFile(c.TLSKey, l.KeyPEM, 0o600); err != nil {
			return err
		}
		if err := pki.WriteFile(c.TLSCert, l.CertPEM, 0o644); err != nil {
			return err
		}
		return w.s.box.Own(dir)
	}
	if err := issue(); err != nil {
		return nil, err
	}
	// A new certificate at two thirds of the old one's life; the replica
	// reloads the files.
	return func(done <-chan struct{}) {
		t := time.NewTicker(replicaCertTTL * 2 / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := issue(); err != nil {
					w.log.Warn("renew replica certificate", "err", err)
				}
			}
		}
	}, nil
}

// replicaLeaf is what a replica's certificate says: a server of host,
// with an identity of its own that is no bmaas process's (it cannot call
// services or other replicas).
func (w *worker) replicaLeaf(host string) pki.Leaf {
	return pki.Leaf{CommonName: "replica " + w.a.JobId, Hosts: []string{host},
		URIs: []string{pki.ReplicaURI(w.s.cfg.Node, w.a.JobId)}, Server: true, TTL: replicaCertTTL}
}

// cpuQuota is a task's CPU cap: its limit when above its request (it
// bursts into CPU the node leaves idle), else its request.
func cpuQuota(r *schedulerv1.Resources) int64 {
	return max(r.GetCpuLimitMillis(), r.GetCpuMillis())
}

func nonEmpty(s ...string) []string {
	var out []string
	for _, v := range s {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

func joinPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
