package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sluicehq/sluice/audit"
	"github.com/sluicehq/sluice/internal/errcode"
	"github.com/sluicehq/sluice/metadata"
)

// Error is every error the API answers with: a stable code (one of
// internal/errcode's) and a message that names what is at fault and never
// a data value or a secret.
type Error struct {
	Code    string `json:"code" example:"not_found" doc:"Stable error code"`
	Message string `json:"message" doc:"What went wrong"`
	status  int
}

func (e *Error) Error() string  { return e.Message }
func (e *Error) GetStatus() int { return e.status }

// apiError turns any error into the API's Error through errcode's table.
// An error without a class is a 500 whose message says nothing internal.
func apiError(err error) *Error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	c := errcode.Of(err)
	msg := err.Error()
	if c == errcode.Internal {
		msg = "internal error"
	}
	return &Error{Code: c.Code, Message: msg, status: c.HTTP}
}

// useAPIErrors makes huma's own errors (a malformed request, a failed
// validation) take the same shape: usage errors with their details in the
// message. huma keeps this hook in a package variable; setting it again is
// harmless.
func useAPIErrors() {
	huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
		code := "usage"
		switch {
		case status == http.StatusServiceUnavailable:
			code = "unavailable"
		case status >= 500:
			code, msg = errcode.Internal.Code, "internal error"
		case status == http.StatusUnauthorized:
			code = "unauthenticated"
		case status == http.StatusForbidden:
			code = "forbidden"
		case status == http.StatusNotFound:
			code = "not_found"
		case status == http.StatusUnsupportedMediaType:
			code = "unsupported_media_type"
		}
		var details []string
		for _, e := range errs {
			if e != nil {
				details = append(details, e.Error())
			}
		}
		if len(details) > 0 && status < 500 {
			msg += ": " + strings.Join(details, "; ")
		}
		return &Error{Code: code, Message: msg, status: status}
	}
}

// principalKey carries the authenticated user in a request's context.
type principalKey struct{}

// principal is the user a request is made by (set by authenticate).
func principal(ctx context.Context) metadata.User {
	u, _ := ctx.Value(principalKey{}).(metadata.User)
	return u
}

// security is what an operation declares to need a token.
var security = []map[string][]string{{"bearer": {}}}

// operation is an API operation that needs a token: a 401 without one, and
// the other error codes it names.
func operation(id, method, path, summary string, codes ...int) huma.Operation {
	return huma.Operation{OperationID: id, Method: method, Path: path, Summary: summary, Security: security,
		Errors: append([]int{http.StatusUnauthorized}, codes...)}
}

// authenticate resolves the bearer token of every operation that declares
// security; anything else is a 401 (never a default allow).
func (s *Server) authenticate(api huma.API) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		if len(ctx.Operation().Security) == 0 {
			next(ctx)
			return
		}
		token, ok := strings.CutPrefix(ctx.Header("Authorization"), "Bearer ")
		var user metadata.User
		err := metadata.ErrUnauthenticated
		if ok && token != "" {
			user, err = s.meta.Authenticate(ctx.Context(), strings.TrimSpace(token))
		}
		if err != nil {
			if !errors.Is(err, metadata.ErrUnauthenticated) {
				s.log.Error("authenticating", "err", err)
			}
			// A failed authentication is an audit event too (R6 alerts on them).
			if aerr := s.appendAudit(ctx.Context(), audit.Record{Actor: "anonymous", Action: ctx.Operation().OperationID,
				Resource: ctx.URL().Path, Result: "unauthenticated", RequestID: requestID(ctx)}); aerr != nil {
				s.log.Error("audit", "err", aerr)
			}
			s.authFailed(ctx.Context(), ctx.RemoteAddr())
			ctx.SetHeader("WWW-Authenticate", `Bearer realm="sluice"`)
			huma.WriteErr(api, ctx, http.StatusUnauthorized, "a valid API token is required (Authorization: Bearer …)")
			return
		}
		next(huma.WithValue(ctx, principalKey{}, user))
	}
}

// record writes an audit record of every authenticated call before its
// handler runs — if it cannot be written, the call fails and nothing is
// done — and one of its outcome after.
func (s *Server) record(api huma.API) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		if len(ctx.Operation().Security) == 0 {
			next(ctx)
			return
		}
		u := principal(ctx.Context())
		rec := audit.Record{Actor: u.ID, Role: string(u.Role), Tenant: u.TenantID, Action: ctx.Operation().OperationID,
			Resource: ctx.URL().Path, Result: "attempt", RequestID: requestID(ctx)}
		if err := s.appendAudit(ctx.Context(), rec); err != nil {
			s.log.Error("audit: refusing the call", "action", rec.Action, "err", err)
			huma.WriteErr(api, ctx, http.StatusServiceUnavailable, "the audit trail cannot be written: nothing was done")
			return
		}
		next(ctx)
		rec.Result = "ok"
		if st := ctx.Status(); st >= 400 {
			rec.Result = http.StatusText(st)
		}
		if err := s.appendAudit(context.WithoutCancel(ctx.Context()), rec); err != nil {
			s.log.Error("audit: the outcome was not recorded", "action", rec.Action, "err", err)
		}
	}
}

// requestID gives the request an ID, made here (never taken from the
// client: the audit trail holds no text of the client's choosing but the
// path), and returns it in X-Request-Id.
func requestID(ctx huma.Context) string {
	id := randomHex(8)
	ctx.SetHeader("X-Request-Id", id)
	return id
}

// randomHex is n random bytes in hex: for names nobody may guess or reuse.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// rejectForms refuses form bodies on the API: it speaks JSON only, so that
// a browser page elsewhere cannot post to it as a form.
func rejectForms(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") && r.ContentLength != 0 {
			mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data" || mt == "text/plain" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnsupportedMediaType)
				fmt.Fprintf(w, `{"code":"unsupported_media_type","message":"the API takes JSON bodies, not %s"}`+"\n", mt)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// Authorisation. A role that may not act at all is a 403; another
// tenant's resource is a 404, as if it did not exist.

// require refuses callers whose role is not among roles.
func require(ctx context.Context, roles ...metadata.Role) error {
	u := principal(ctx)
	for _, r := range roles {
		if u.Role == r {
			return nil
		}
	}
	return fmt.Errorf("%s may not do this: %w", u.Role, metadata.ErrForbidden)
}

// visibleTenant is the tenant whose resources a listing shows the caller:
// "" (every tenant) for the platform roles, a scientist's own otherwise.
func visibleTenant(ctx context.Context) string {
	if u := principal(ctx); !u.Role.Platform() {
		return u.TenantID
	}
	return ""
}

// seesTenant reports whether the caller may see the tenant's resources:
// the platform roles see every tenant, a scientist only their own.
func seesTenant(ctx context.Context, tenantID string) bool {
	u := principal(ctx)
	return u.Role.Platform() || u.TenantID == tenantID
}
