package server

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluicehq/sluice/audit"
	"github.com/sluicehq/sluice/internal/atomicfile"
	"github.com/sluicehq/sluice/metadata"
	"github.com/sluicehq/sluice/policy"
	"github.com/sluicehq/sluice/storage"
)

// AdminTokenFile is the file in the data directory that receives the first
// administrator's token on the first start.
const AdminTokenFile = "admin.token"

// Server is sluice server: every subsystem, wired here and only here.
type Server struct {
	cfg     Config
	log     *slog.Logger
	meta    *metadata.SQLite
	audit   *audit.Log
	pub     ed25519.PublicKey // verifies the audit trail's checkpoints
	master  storage.MasterKey
	store   storage.Store
	handler http.Handler
	metrics *metrics
	watch   watches
	policy  *policy.Engine
	exec    Executor   // nil: this server runs no jobs
	sched   *scheduler // with exec
	gates   gates      // the gate of each dataset version
}

// Option configures a Server.
type Option func(*Server)

// WithExecutor lets the server run jobs in this sandbox (containerd in
// production). Without one, job submissions are refused as unavailable.
func WithExecutor(e Executor) Option { return func(s *Server) { s.exec = e } }

// New opens the data directory and the subsystems. On the first start (no
// user yet) it creates the administrator and writes its token to
// DataDir/admin.token (0600).
func New(ctx context.Context, cfg Config, log *slog.Logger, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	key, err := loadOrCreateKey(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	master, store, err := openStorage(cfg)
	if err != nil {
		return nil, err
	}
	trail, err := audit.Open(ctx, filepath.Join(cfg.DataDir, "audit.db"), key)
	if err != nil {
		return nil, err
	}
	meta, err := metadata.OpenSQLite(ctx, filepath.Join(cfg.DataDir, "sluice.db"))
	if err != nil {
		trail.Close()
		return nil, err
	}
	engine, err := policy.Default(ctx)
	if err != nil {
		meta.Close()
		trail.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, meta: meta, audit: trail, pub: key.Public().(ed25519.PublicKey), master: master, store: store,
		metrics: newMetrics(meta), watch: newWatches(), policy: engine}
	for _, o := range opts {
		o(s)
	}
	if err := s.bootstrap(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.removeScratch(); err != nil {
		s.Close()
		return nil, err
	}
	if s.exec != nil {
		if s.sched, err = newScheduler(s, s.exec); err != nil {
			s.Close()
			return nil, err
		}
	}
	s.handler = s.routes()
	return s, nil
}

// openStorage loads the master key (making it on the first start) and
// opens the object store.
func openStorage(cfg Config) (storage.MasterKey, storage.Store, error) {
	path := cmp.Or(cfg.MasterKey, filepath.Join(cfg.DataDir, "master.key"))
	master, err := storage.LoadMasterKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		master, err = storage.NewMasterKeyFile(path)
	}
	if err != nil {
		return master, nil, fmt.Errorf("master key: %w", err)
	}
	store, err := storage.Open(cmp.Or(cfg.Store, "file://"+filepath.Join(cfg.DataDir, "objects")))
	return master, store, err
}

// bootstrap creates the first administrator when there is no user.
func (s *Server) bootstrap(ctx context.Context) error {
	n, err := s.meta.CountUsers(ctx)
	if err != nil || n > 0 {
		return err
	}
	// Written first: no administrator without a record of it.
	if err := s.appendAudit(ctx, audit.Record{Actor: "system", Action: "bootstrap-admin", Result: "attempt"}); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	admin, err := s.meta.CreateUser(ctx, "admin", metadata.RoleAdmin, "")
	if err != nil {
		return err
	}
	_, secret, err := s.meta.CreateToken(ctx, admin.ID, s.cfg.TokenTTL)
	if err != nil {
		return err
	}
	path := filepath.Join(s.cfg.DataDir, AdminTokenFile)
	if err := atomicfile.WriteFile(path, []byte(secret.Reveal()+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing the administrator's token: %w", err)
	}
	s.log.Info("first start: created the administrator", "user", admin.ID, "token_file", path)
	return s.appendAudit(ctx, audit.Record{Actor: "system", Action: "bootstrap-admin", Resource: admin.ID, Result: "ok"})
}

// appendAudit writes an audit record and counts the write.
func (s *Server) appendAudit(ctx context.Context, r audit.Record) error {
	_, err := s.audit.Append(ctx, r)
	result := "ok"
	if err != nil {
		result = "failed"
	}
	s.metrics.auditWrites.WithLabelValues(result).Inc()
	return err
}

// Close closes the subsystems; the audit trail's head is signed.
func (s *Server) Close() error { return errors.Join(s.meta.Close(), s.audit.Close()) }

// Handler is the server's HTTP handler: the API and the operational
// endpoints.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	useAPIErrors()
	mux := http.NewServeMux()
	hc := huma.DefaultConfig("Sluice", "1.0.0")
	hc.Info.Description = "The Sluice platform API: tenants, users and tokens; datasets; scenarios and their views; code bundles and jobs; egress requests and the gate's decisions; the audit trail; alerts. (Review and release follow.)"
	hc.OpenAPIPath = "/api/openapi"
	hc.DocsPath = "" // no page that loads scripts from elsewhere: air-gapped platforms
	hc.SchemasPath = "/api/schemas"
	hc.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", Description: "An API token (sluice user create prints one)."},
	}
	api := humago.New(mux, hc)
	api.UseMiddleware(s.authenticate(api), s.record(api))
	s.register(api)
	s.registerDatasets(api)
	s.registerUploads(api)
	s.registerScenarios(api)
	s.registerAmendments(api)
	s.registerAudit(api)
	s.registerViews(api)
	s.registerAlerts(api)
	s.registerJobs(api)
	s.registerEgress(api)
	s.registerReviews(api)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.meta.Ping(r.Context()); err != nil {
			http.Error(w, "metadata store unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	return s.metrics.instrument(rejectForms(mux))
}

// StartJobs takes on the jobs an earlier process left and starts the
// scheduler, until ctx ends (Serve calls it). Without an executor it does
// nothing.
func (s *Server) StartJobs(ctx context.Context) error {
	if s.sched == nil {
		return nil
	}
	return s.sched.start(ctx)
}

// Serve runs the scheduler and serves on ln until ctx ends, then lets
// requests in flight finish (up to ShutdownGrace). Jobs are not stopped:
// the next start recovers them.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := s.StartJobs(ctx); err != nil {
		return err
	}
	hs := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) }}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownGrace)
	defer cancel()
	err := hs.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// metrics are the server's Prometheus metrics, in a registry of its own.
type metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	auditWrites *prometheus.CounterVec
	alerts      *prometheus.CounterVec
	gateLatency prometheus.Histogram
}

func newMetrics(meta *metadata.SQLite) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_http_requests_total", Help: "HTTP requests by method, route and status code.",
		}, []string{"method", "route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_http_request_duration_seconds", Help: "HTTP request latency by method and route.", Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
	}
	m.auditWrites = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_audit_writes_total", Help: "Audit records written, and writes that failed (the action was then refused).",
	}, []string{"result"})
	m.alerts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_alerts_total", Help: "Alerts raised, by kind.",
	}, []string{"kind"})
	m.gateLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "sluice_gate_check_seconds", Help: "Time the egress gate took to check one product against its sources.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
	})
	m.reg.MustRegister(m.requests, m.latency, m.auditWrites, m.alerts, m.gateLatency, jobsCollector{meta}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// jobsCollector reports the jobs by state, counted when scraped; the queue
// depth is the queued ones.
type jobsCollector struct{ meta *metadata.SQLite }

var (
	jobsDesc  = prometheus.NewDesc("sluice_jobs", "Jobs by state.", []string{"state"}, nil)
	queueDesc = prometheus.NewDesc("sluice_job_queue_depth", "Jobs waiting for the scheduler.", nil, nil)
)

func (jobsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- jobsDesc; ch <- queueDesc }

func (c jobsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := c.meta.CountJobs(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(jobsDesc, err)
		return
	}
	for _, st := range []string{"queued", "preparing", "running", "finishing", "done", "failed"} {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(n[st]), st)
	}
	ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(n["queued"]))
}

// instrument counts and times every request by its route pattern (never
// its path: paths hold IDs).
func (m *metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		m.requests.WithLabelValues(r.Method, route, fmt.Sprint(sw.code)).Inc()
		m.latency.WithLabelValues(r.Method, route).Observe(time.Since(start).Seconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (to flush a
// followed log).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
