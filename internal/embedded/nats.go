package embedded

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSConfig configures the embedded NATS server.
type NATSConfig struct {
	// StoreDir holds JetStream's streams.
	StoreDir string
	// Addr is host:port for clients; port 0 picks a free port.
	Addr string
	// StartTimeout bounds the wait for the server to accept connections.
	StartTimeout time.Duration
	// User and Password, when set, are the only credentials the server
	// accepts.
	User, Password string
}

// NATS is a running embedded NATS server with JetStream.
type NATS struct {
	s *server.Server
}

// StartNATS starts an embedded NATS server with JetStream enabled. It never
// installs signal handlers: the binary's main owns signals.
func StartNATS(cfg NATSConfig) (*NATS, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("nats store dir is required")
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 10 * time.Second
	}
	host, portStr, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("nats address %q: %w", cfg.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("nats address %q: port: %w", cfg.Addr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: "bmaas",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
		NoLog:      true,
		MaxPayload: 8 << 20,
		Username:   cfg.User,
		Password:   cfg.Password,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(cfg.StartTimeout) {
		s.Shutdown()
		return nil, fmt.Errorf("nats not ready after %s", cfg.StartTimeout)
	}
	return &NATS{s: s}, nil
}

// ClientURL is the URL clients connect to.
func (n *NATS) ClientURL() string { return n.s.ClientURL() }

// Close shuts the server down and waits for it.
func (n *NATS) Close() {
	n.s.Shutdown()
	n.s.WaitForShutdown()
}
