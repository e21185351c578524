package app

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/api/inference"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/httpedge"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/services/gateway"
	iamsvc "github.com/bmaas/bmaas/services/iam"
	"github.com/bmaas/bmaas/services/registry"
	"github.com/bmaas/bmaas/web"
)

// openAPI is generated from proto/ by `make generate`.
//
//go:embed openapi.json
var openAPI []byte

// startHTTP builds the HTTP edge over this process's own gRPC client
// connection (which forwards the calls of services it does not run) and
// binds its listener.
func (a *App) startHTTP(ctx context.Context) error {
	iamClient := iamv1.NewIAMServiceClient(a.w.selfConn)
	web, err := iamsvc.NewWebLogin(a.cfg.OIDC, func(ctx context.Context, idToken string) (*iamv1.LoginResponse, error) {
		return iamClient.Login(ctx, &iamv1.LoginRequest{IdToken: idToken})
	}, a.log.With("svc", "iam"))
	if err != nil {
		return err
	}
	srv, err := newHTTPServer(ctx, a.w.selfConn, edge{cfg: a.cfg.HTTP, names: a.ownNames(), webLogin: web,
		token: a.w.dialer.Token(), guard: a.w.guard, reg: a.reg, ready: func() bool { return a.ready.Load() && !a.stopping.Load() },
		bus: a.w.bus, gateway: a.w.gateway, maxInferBytes: a.cfg.Gateway.MaxRequestBytes, log: a.log, tracer: a.w.tracer})
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", a.cfg.HTTPAddr, err)
	}
	a.httpSrv = srv
	a.httpSrv.TLSConfig = a.httpTLS()
	a.httpLis = lis
	a.setAddrs(func(ad *Addrs) { ad.HTTP = lis.Addr().String() })
	return nil
}

// edge is what the HTTP edge is built from besides the gRPC connection.
type edge struct {
	cfg   httpedge.Config
	names []string // this process's own host names
	// token is the one every caller must present (the mesh's; "" is off).
	token string
	// guard authenticates the caller and authorizes the edge's own
	// routes (nil: one made of token alone).
	guard *iam.Guard
	// webLogin signs people in to the console with OIDC (nil: off).
	webLogin *iamsvc.WebLogin
	reg      *prometheus.Registry
	ready    func() bool
	// bus carries the control-plane events GET /v1/events:watch relays.
	bus *events.Bus
	// gateway serves the KServe v2 routes in a process that runs it;
	// when nil they go to the gateway over the connection.
	gateway       *gateway.Service
	maxInferBytes int64
	log           *slog.Logger
	// tracer, when set, runs every request in a server span.
	tracer trace.TracerProvider
}

// newHTTPServer builds the HTTP edge: REST for every service through the
// gRPC clients of conn, raw artifact and dataset bytes, the KServe v2
// routes, /readyz, /metrics, /openapi.json and the web console under /ui/
// (the root redirects there), behind the one chain of every route
// (httpchain.go): metrics and tracing, panic recovery, the guard and the
// bearer token. The server's Handler is the whole edge as served.
func newHTTPServer(ctx context.Context, conn *grpc.ClientConn, e edge) (*http.Server, error) {
	gw := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, strictJSON{&runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}}),
		// The caller's Authorization goes as iam.OnBehalfOfKey (the
		// connection's interceptors), never as the call's own.
		runtime.WithIncomingHeaderMatcher(func(k string) (string, bool) {
			switch k {
			case "Authorization":
				return "", false
			case "Bmaas-Project":
				return iam.ProjectHeader, true
			}
			return runtime.DefaultHeaderMatcher(k)
		}),
		runtime.WithRoutingErrorHandler(routingError),
		runtime.WithErrorHandler(restError),
		runtime.WithMiddlewares(gatewayRoute),
	)
	type reg struct {
		target string
		fn     func() error
	}
	for _, r := range []reg{
		{TargetRegistry, func() error { return registryv1.RegisterRegistryServiceHandler(ctx, gw, conn) }},
		{TargetScheduler, func() error { return schedulerv1.RegisterSchedulerServiceHandler(ctx, gw, conn) }},
		{TargetEvaluator, func() error { return evaluatorv1.RegisterEvaluatorServiceHandler(ctx, gw, conn) }},
		{TargetEvaluator, func() error { return evaluatorv1.RegisterMonitorServiceHandler(ctx, gw, conn) }},
		{TargetGateway, func() error { return gatewayv1.RegisterDeploymentServiceHandler(ctx, gw, conn) }},
		{TargetGateway, func() error { return gatewayv1.RegisterRuntimeServiceHandler(ctx, gw, conn) }},
		{TargetRegistry, func() error { return iamv1.RegisterIAMServiceHandler(ctx, gw, conn) }},
		{TargetRegistry, func() error { return iamv1.RegisterAuditServiceHandler(ctx, gw, conn) }},
	} {
		if err := r.fn(); err != nil {
			return nil, fmt.Errorf("rest %s: %w", r.target, err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/", qualifiedPaths(gw))
	registry.RawHTTP(mux, registryv1.NewRegistryServiceClient(conn))
	if e.webLogin != nil {
		e.webLogin.Register(mux)
	}
	if e.gateway != nil {
		e.gateway.RegisterHTTP(mux, gw)
	} else {
		gateway.RegisterRemoteHTTP(mux, gw, inference.NewGRPCInferenceServiceClient(conn), e.maxInferBytes)
	}
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !e.ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.Handle("GET /metrics", metricsHandler(e.reg))
	stopWatches := registerEventsWatch(mux, e.bus)
	mux.Handle("GET /ui/", web.Handler("/ui/"))
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPI)
	})
	guard, err := httpedge.New(e.cfg, httpedge.Options{Names: e.names, Classify: func(r *http.Request) httpedge.Kind {
		return routeKind(mux, r)
	}})
	if err != nil {
		return nil, err
	}
	met, err := newHTTPMetrics(e.reg)
	if err != nil {
		return nil, fmt.Errorf("http metrics: %w", err)
	}
	var tracer trace.Tracer
	if e.tracer != nil {
		tracer = e.tracer.Tracer("github.com/bmaas/bmaas/internal/app/http")
	}
	log := e.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := e.guard
	if g == nil {
		g = iam.NewGuard(iam.NewAuthority(e.token, nil, nil, nil), nil, nil)
	}
	srv := guard.Server(g.HTTP(publicPath, func(r *http.Request) string { _, p := mux.Handler(r); return p },
		writeHTTPError, muxRoute(mux)))
	srv.Handler = observe(met, tracer, mux, recoverHTTP(log, srv.Handler))
	srv.RegisterOnShutdown(stopWatches)
	return srv, nil
}

// routeKind tells the edge what a state-changing request's route does
// with its body: raw uploads stream, KServe v2, the OpenAI routes and
// :predict are bounded by the gateway, the rest of the REST API takes
// JSON.
func routeKind(mux *http.ServeMux, r *http.Request) httpedge.Kind {
	if p := r.URL.Path; strings.HasPrefix(p, "/v2/") || strings.HasPrefix(p, "/openai/") ||
		(strings.HasPrefix(p, "/v1/models/") && strings.HasSuffix(p, ":predict")) {
		return httpedge.Inference
	}
	if _, pattern := mux.Handler(r); registry.IsUploadRoute(pattern) {
		return httpedge.Upload
	}
	return httpedge.JSON
}

// ownNames are the host names this process answers to besides loopback
// names and IP addresses: its node name, the machine's host name and the
// advertised host.
func (a *App) ownNames() []string {
	names := []string{a.nodeName(), a.cfg.AdvertiseHost}
	if h, err := os.Hostname(); err == nil {
		names = append(names, h)
	}
	if host, _, err := net.SplitHostPort(a.w.advertise); err == nil {
		names = append(names, host)
	}
	return names
}

// publicPath: the probes, the API description, signing in and the
// console's static files answer without the bearer token (the console
// asks for it and sends it on its API calls). The metrics need one: what
// they show depends on who asks.
func publicPath(p string) bool {
	switch p {
	case "/", "/readyz", "/livez", "/openapi.json", "/v2/health/live", "/v2/health/ready", "/v1/auth-config", "/v1/login",
		iamsvc.WebLoginPath, iamsvc.WebCallbackPath:
		return true
	}
	// Only what resolves under /ui: /ui/../v1/models is not public.
	return strings.HasPrefix(path.Clean(p)+"/", "/ui/")
}

func (a *App) runHTTP(context.Context) error {
	serve := a.httpSrv.Serve
	if a.httpSrv.TLSConfig != nil {
		serve = func(l net.Listener) error { return a.httpSrv.ServeTLS(l, "", "") }
	}
	if err := serve(a.httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (a *App) stopHTTP(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, a.cfg.Shutdown.HTTPTimeout)
	defer cancel()
	if err := a.httpSrv.Shutdown(sctx); err != nil {
		_ = a.httpSrv.Close()
	}
}
