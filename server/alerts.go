package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sluicehq/sluice/audit"
	"github.com/sluicehq/sluice/metadata"
)

// Repeated failed authentications from one client are an alert (R6).
const (
	authFailWindow    = 5 * time.Minute
	authFailThreshold = 10
)

// authWatch counts failed authentications per client address in a sliding
// window, and says when a client crosses the threshold: once a window.
// Clients quiet for a window are forgotten (swept at most once a window),
// so failures from ever new addresses do not grow it without bound.
type authWatch struct {
	mu      sync.Mutex
	fails   map[string][]time.Time
	alerted map[string]time.Time
	swept   time.Time
}

func newAuthWatch() *authWatch {
	return &authWatch{fails: map[string][]time.Time{}, alerted: map[string]time.Time{}}
}

// fail records a failure of addr at now and reports whether it raises an
// alert, with the failures in the window.
func (w *authWatch) fail(addr string, now time.Time) (int, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Sub(w.swept) >= authFailWindow {
		w.sweep(now)
	}
	kept := w.fails[addr][:0]
	for _, t := range w.fails[addr] {
		if now.Sub(t) < authFailWindow {
			kept = append(kept, t)
		}
	}
	kept = append(kept, now)
	w.fails[addr] = kept
	if len(kept) < authFailThreshold || now.Sub(w.alerted[addr]) < authFailWindow {
		return len(kept), false
	}
	w.alerted[addr] = now
	return len(kept), true
}

// sweep forgets the clients with no failure and no alert within a window.
func (w *authWatch) sweep(now time.Time) {
	for addr, ts := range w.fails {
		if now.Sub(ts[len(ts)-1]) >= authFailWindow && now.Sub(w.alerted[addr]) >= authFailWindow {
			delete(w.fails, addr)
			delete(w.alerted, addr)
		}
	}
	w.swept = now
}

// authFailed counts a failed authentication and raises the alert when the
// client crosses the threshold: an alert record, an audit event and a metric.
func (s *Server) authFailed(ctx context.Context, remote string) {
	addr, _, err := net.SplitHostPort(remote)
	if err != nil {
		addr = remote
	}
	n, raise := s.watch.fail(addr, time.Now())
	if !raise {
		return
	}
	const kind = "auth-failures"
	a, err := s.meta.AddAlert(ctx, metadata.Alert{Kind: kind, Subject: "client " + addr,
		Detail: fmt.Sprintf("%d failed authentications within %v", n, authFailWindow)})
	if err != nil {
		s.log.Error("recording an alert", "err", err)
	}
	s.metrics.alerts.WithLabelValues(kind).Inc() // the alert stands even if its record could not be written
	if err := s.appendAudit(ctx, audit.Record{Actor: "system", Action: "alert", Resource: a.ID, Result: kind}); err != nil {
		s.log.Error("audit", "err", err)
	}
	s.log.Warn("alert: repeated failed authentications", "client", addr, "failures", n)
}

type alertsInput struct {
	Since time.Time `query:"since" doc:"Only alerts at or after this time (RFC 3339); the last 30 days by default"`
}

type alertsBody struct {
	Body struct {
		Alerts []metadata.Alert `json:"alerts"`
	}
}

func (s *Server) registerAlerts(api huma.API) {
	huma.Register(api, operation("list-alerts", http.MethodGet, "/api/v1/alerts",
		"Alerts: abnormal operations noticed (security, auditor, admin)", 403),
		func(ctx context.Context, in *alertsInput) (*alertsBody, error) {
			if err := require(ctx, metadata.RoleSecurity, metadata.RoleAuditor, metadata.RoleAdmin); err != nil {
				return nil, apiError(err)
			}
			since := in.Since
			if since.IsZero() {
				since = time.Now().AddDate(0, 0, -30)
			}
			as, err := s.meta.ListAlerts(ctx, since)
			if err != nil {
				return nil, apiError(err)
			}
			out := &alertsBody{}
			out.Body.Alerts = as
			return out, nil
		})
}
