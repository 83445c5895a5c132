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
	"github.com/sluicehq/sluice/sandbox"
)

// Abnormal operations are alerts (R6): one kind each, counted per subject
// (a client address, a tenant) in a sliding window.
var (
	// Repeated failed authentications from one client.
	authFailures = burstRule{Kind: "auth-failures", Window: 5 * time.Minute, Threshold: 10, What: "failed authentications"}
	// A tenant's jobs refused by the admission policy.
	jobDenials = burstRule{Kind: "job-denials", Window: 10 * time.Minute, Threshold: 5, What: "jobs denied admission"}
	// A tenant's jobs that failed (could not run, or exited non-zero).
	jobFailures = burstRule{Kind: "job-failures", Window: 10 * time.Minute, Threshold: 5, What: "failed jobs"}
	// A tenant's jobs stopped at a limit (timeout, memory, output size).
	jobLimits = burstRule{Kind: "job-limits", Window: 10 * time.Minute, Threshold: 3, What: "jobs stopped at a limit"}
)

// burstRule is when events of one kind become an alert: Threshold of them
// for one subject within Window.
type burstRule struct {
	Kind      string
	Window    time.Duration
	Threshold int
	What      string // the events, in words
}

// burstWatch counts events per subject in a sliding window, and says when
// a subject crosses its rule's threshold: once a window. Subjects quiet
// for a window are forgotten (swept at most once a window), so events from
// ever new subjects do not grow it without bound.
type burstWatch struct {
	rule    burstRule
	mu      sync.Mutex
	events  map[string][]time.Time
	alerted map[string]time.Time
	swept   time.Time
}

func newBurstWatch(r burstRule) *burstWatch {
	return &burstWatch{rule: r, events: map[string][]time.Time{}, alerted: map[string]time.Time{}}
}

// add records an event of subject at now and reports whether it raises an
// alert, with the events in the window.
func (w *burstWatch) add(subject string, now time.Time) (int, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	window := w.rule.Window
	if now.Sub(w.swept) >= window {
		w.sweep(now)
	}
	kept := w.events[subject][:0]
	for _, t := range w.events[subject] {
		if now.Sub(t) < window {
			kept = append(kept, t)
		}
	}
	kept = append(kept, now)
	w.events[subject] = kept
	if len(kept) < w.rule.Threshold || now.Sub(w.alerted[subject]) < window {
		return len(kept), false
	}
	w.alerted[subject] = now
	return len(kept), true
}

// sweep forgets the subjects with no event and no alert within a window.
func (w *burstWatch) sweep(now time.Time) {
	for subject, ts := range w.events {
		if now.Sub(ts[len(ts)-1]) >= w.rule.Window && now.Sub(w.alerted[subject]) >= w.rule.Window {
			delete(w.events, subject)
			delete(w.alerted, subject)
		}
	}
	w.swept = now
}

// watches are the server's burst watches, one per rule.
type watches map[string]*burstWatch

func newWatches() watches {
	w := watches{}
	for _, r := range []burstRule{authFailures, jobDenials, jobFailures, jobLimits} {
		w[r.Kind] = newBurstWatch(r)
	}
	return w
}

// notice counts an event of a rule's kind for subject and raises the alert
// when the subject crosses the threshold: an alert record, an audit event
// and a metric.
func (s *Server) notice(ctx context.Context, r burstRule, subject string) {
	n, raise := s.watch[r.Kind].add(subject, time.Now())
	if !raise {
		return
	}
	a, err := s.meta.AddAlert(ctx, metadata.Alert{Kind: r.Kind, Subject: subject,
		Detail: fmt.Sprintf("%d %s within %v", n, r.What, r.Window)})
	if err != nil {
		s.log.Error("recording an alert", "err", err)
	}
	s.metrics.alerts.WithLabelValues(r.Kind).Inc() // the alert stands even if its record could not be written
	if err := s.appendAudit(ctx, audit.Record{Actor: "system", Action: "alert", Resource: a.ID, Result: r.Kind}); err != nil {
		s.log.Error("audit", "err", err)
	}
	s.log.Warn("alert: "+r.What, "subject", subject, "count", n)
}

// authFailed counts a failed authentication of a client.
func (s *Server) authFailed(ctx context.Context, remote string) {
	addr, _, err := net.SplitHostPort(remote)
	if err != nil {
		addr = remote
	}
	s.notice(ctx, authFailures, "client "+addr)
}

// jobEnded counts a job's end against its tenant: a failure, or a stop at
// a limit.
func (s *Server) jobEnded(ctx context.Context, tenant string, state sandbox.JobState, reason sandbox.Reason, exitCode int) {
	switch {
	case reason == sandbox.ReasonTimeout || reason == sandbox.ReasonOOM || reason == sandbox.ReasonOutputLimit:
		s.notice(ctx, jobLimits, "tenant "+tenant)
	case state == sandbox.JobFailed || reason == sandbox.ReasonExited && exitCode != 0:
		s.notice(ctx, jobFailures, "tenant "+tenant)
	}
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
