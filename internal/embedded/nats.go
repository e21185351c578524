package embedded

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"
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
	// Logger takes the server's warnings and errors (its notices too
	// when it takes debug records); nil drops them.
	Logger *slog.Logger
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
		MaxPayload: 8 << 20,
		Username:   cfg.User,
		Password:   cfg.Password,
	}
	if opts.Password != "" {
		// NATS takes a bcrypt hash in place of the password (and warns
		// on every start about a plain one).
		h, err := bcrypt.GenerateFromPassword([]byte(opts.Password), bcrypt.MinCost)
		if err != nil {
			return nil, fmt.Errorf("nats password: %w", err)
		}
		opts.Password = string(h)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	s.SetLoggerV2(natsServerLogger(cfg.Logger), false, false, false)
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
