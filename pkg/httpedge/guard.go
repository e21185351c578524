package httpedge

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rs/cors"
)

// Kind is what a route does with its request body.
type Kind int

const (
	// JSON routes take a JSON body of at most MaxBodyBytes.
	JSON Kind = iota
	// Upload routes stream raw bytes (an artifact, a CSV) of any size
	// the service accepts, for up to UploadTimeout.
	Upload
	// Inference routes speak KServe v2: a JSON body (the content type may
	// be left out, as some clients do), bounded by the gateway itself.
	Inference
)

// Options are what the caller knows of its routes and of itself.
type Options struct {
	// Names are this machine's own names (node name, host name, the
	// advertised host), accepted as Host header values.
	Names []string
	// Classify tells a request's route kind; nil makes every route JSON.
	Classify func(*http.Request) Kind
}

// Guard is the edge's protection, in front of every handler.
type Guard struct {
	cfg      Config
	names    []string
	classify func(*http.Request) Kind
	csrf     *http.CrossOriginProtection
	cors     *cors.Cors
}

// New builds a guard.
func New(cfg Config, opts Options) (*Guard, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Guard{cfg: cfg, classify: opts.Classify, csrf: http.NewCrossOriginProtection()}
	for _, n := range opts.Names {
		if n = normHost(n); n != "" {
			g.names = append(g.names, n)
		}
	}
	for _, o := range cfg.AllowedOrigins {
		if err := g.csrf.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("http.allowed-origins: %w", err)
		}
	}
	g.csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			origin = "Sec-Fetch-Site: " + r.Header.Get("Sec-Fetch-Site")
		}
		writeError(w, r, http.StatusForbidden, codePermissionDenied,
			fmt.Sprintf("cross-site request refused (%s is not this server's origin); allow a trusted origin with --http.allowed-origins", origin))
	}))
	if len(cfg.AllowedOrigins) > 0 {
		g.cors = cors.New(cors.Options{
			AllowedOrigins: cfg.AllowedOrigins,
			AllowedMethods: []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete},
			AllowedHeaders: []string{"Authorization", "Content-Type", "X-Checksum-Sha256", "X-Request-Id"},
			ExposedHeaders: []string{"X-Checksum-Sha256", "X-Request-Id"},
			MaxAge:         600,
		})
	}
	return g, nil
}

// Server returns an HTTP server for h with the edge's timeouts.
func (g *Guard) Server(h http.Handler) *http.Server {
	return &http.Server{Handler: g.Handler(h), ReadHeaderTimeout: g.cfg.ReadHeaderTimeout,
		ReadTimeout: g.cfg.ReadTimeout, IdleTimeout: g.cfg.IdleTimeout, MaxHeaderBytes: 1 << 20}
}

// Handler runs the checks, in order: the Host, valid UTF-8 in the path
// and query, CORS (preflights end here), cross-site requests, the
// content type of state-changing requests and the body's size.
func (g *Guard) Handler(next http.Handler) http.Handler {
	inner := g.csrf.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.body(w, r) {
			next.ServeHTTP(w, r)
		}
	}))
	if g.cors != nil {
		inner = g.cors.Handler(inner)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.hostAllowed(r.Host) {
			writeError(w, r, http.StatusForbidden, codePermissionDenied,
				fmt.Sprintf("host %q is not this server's name; add it to --http.allowed-hosts", r.Host))
			return
		}
		if !validUTF8(r.URL) {
			writeError(w, r, http.StatusBadRequest, codeInvalidArgument, "path: the path or query is not valid UTF-8")
			return
		}
		if g.cors == nil && r.Method == http.MethodOptions && r.Header.Get("Origin") != "" &&
			r.Header.Get("Access-Control-Request-Method") != "" {
			writeError(w, r, http.StatusForbidden, codePermissionDenied,
				"cross-origin requests are not allowed; allow a trusted origin with --http.allowed-origins")
			return
		}
		inner.ServeHTTP(w, r)
	})
}

// hostAllowed: loopback names, IP literals (a rebound DNS name never is
// one), this machine's names and the configured ones.
func (g *Guard) hostAllowed(hostport string) bool {
	if hostport == "" {
		return true
	}
	h := normHost(hostport)
	if h == "localhost" || strings.HasSuffix(h, ".localhost") || net.ParseIP(h) != nil || slices.Contains(g.names, h) {
		return true
	}
	for _, a := range g.cfg.AllowedHosts {
		a = strings.ToLower(a)
		if a == "*" || a == h || (strings.HasPrefix(a, ".") && strings.HasSuffix(h, a)) {
			return true
		}
	}
	return false
}

// normHost lowercases a host, drops its port, brackets and final dot.
func normHost(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.Trim(h, "[]"), ".")
	return strings.ToLower(h)
}

func validUTF8(u *url.URL) bool {
	if !utf8.ValidString(u.Path) {
		return false
	}
	if u.RawQuery == "" {
		return true
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return true // the handler reports a malformed query
	}
	for k, vs := range q {
		if !utf8.ValidString(k) {
			return false
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return false
			}
		}
	}
	return true
}

// formTypes are the content types a cross-site HTML form or a "simple"
// fetch can send without a CORS preflight.
var formTypes = []string{"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}

// body checks the content type of a state-changing request and bounds
// its body; false means it answered already.
func (g *Guard) body(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions {
		return true
	}
	kind := JSON
	if g.classify != nil {
		kind = g.classify(r)
	}
	ct := r.Header.Get("Content-Type")
	mt := ""
	if ct != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(ct); err != nil {
			writeError(w, r, http.StatusUnsupportedMediaType, codeInvalidArgument, fmt.Sprintf("Content-Type %q: %v", ct, err))
			return false
		}
	}
	hasBody := r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
	switch {
	case slices.Contains(formTypes, mt):
		writeError(w, r, http.StatusUnsupportedMediaType, codeInvalidArgument, fmt.Sprintf(
			"Content-Type %s: a browser form's type is not accepted on a state-changing request; send Content-Type: application/json (curl: -H 'Content-Type: application/json')", mt))
		return false
	case kind == Upload:
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(g.cfg.UploadTimeout))
		return true
	case mt == "application/json" || (mt == "" && (kind == Inference || !hasBody)) || (kind == Inference && mt == "application/octet-stream"):
	default:
		if mt == "" {
			mt = "none"
		}
		writeError(w, r, http.StatusUnsupportedMediaType, codeInvalidArgument,
			fmt.Sprintf("Content-Type %s: this request needs Content-Type: application/json", mt))
		return false
	}
	if kind == Inference || !hasBody {
		return true
	}
	return g.limit(w, r)
}

// limit refuses a JSON body over MaxBodyBytes: a declared length at once,
// a chunked body as soon as it passes the limit.
func (g *Guard) limit(w http.ResponseWriter, r *http.Request) bool {
	max := g.cfg.MaxBodyBytes
	tooLarge := func() bool {
		w.Header().Set("Connection", "close")
		writeError(w, r, http.StatusRequestEntityTooLarge, codeResourceExhausted,
			fmt.Sprintf("body: over %d bytes (--http.max-body-bytes)", max))
		return false
	}
	if r.ContentLength > max {
		return tooLarge()
	}
	if r.ContentLength >= 0 {
		r.Body = http.MaxBytesReader(w, r.Body, max)
		return true
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		writeError(w, r, http.StatusBadRequest, codeInvalidArgument, fmt.Sprintf("body: %v", err))
		return false
	}
	if int64(len(b)) > max {
		return tooLarge()
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	return true
}
