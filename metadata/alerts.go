package metadata

import (
	"context"
	"time"
)

// Alert is an abnormal operation the platform noticed (R6).
type Alert struct {
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`    // e.g. "auth-failures"
	Subject string    `json:"subject"` // what it is about: a client address, a tenant
	Detail  string    `json:"detail"`  // counts and windows, no value
}

// AddAlert records an alert.
func (s *SQLite) AddAlert(ctx context.Context, a Alert) (Alert, error) {
	a.ID, a.Time = newID("alr"), fromMicros(now())
	_, err := s.db.ExecContext(ctx, `INSERT INTO alerts (id, time, kind, subject, detail) VALUES (?, ?, ?, ?, ?)`,
		a.ID, a.Time.UnixMicro(), a.Kind, a.Subject, a.Detail)
	return a, err
}

// ListAlerts lists the alerts since a time, the newest first.
func (s *SQLite) ListAlerts(ctx context.Context, since time.Time) ([]Alert, error) {
	return queryAll(ctx, s.db, scanAlert, `SELECT id, time, kind, subject, detail FROM alerts WHERE time >= ? ORDER BY time DESC`, since.UnixMicro())
}

func scanAlert(sc scanner) (Alert, error) {
	var a Alert
	var t int64
	err := sc.Scan(&a.ID, &t, &a.Kind, &a.Subject, &a.Detail)
	a.Time = fromMicros(t)
	return a, err
}
