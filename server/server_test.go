package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/audit"
	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/internal/leakcheck"
	"github.com/sluicehq/sluice/storage"
)

// These run the real server (SQLite included) behind httptest, and speak
// to it over HTTP as any client would.

type client struct {
	t     *testing.T
	url   string
	token string
}

// call sends a JSON request and decodes the JSON answer into out (when not
// nil); it returns the status.
func (c client) call(method, path string, body, out any) int {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.url+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			c.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

func (c client) as(token string) client { c.token = token; return c }

// raw sends a body that is not JSON (none when nil) and returns the answer
// as it is.
func (c client) raw(method, path, contentType string, body []byte) ([]byte, int) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.url+path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return data, resp.StatusCode
}

type fixture struct {
	srv   *Server
	dir   string
	imp   string // the import directory
	admin client
	logs  *bytes.Buffer
}

func start(t *testing.T) *fixture {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	logs := &bytes.Buffer{}
	cfg := DefaultConfig
	cfg.DataDir, cfg.ImportDir = dir, t.TempDir()
	srv, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	token, err := os.ReadFile(filepath.Join(dir, AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{srv: srv, dir: dir, imp: cfg.ImportDir, admin: client{t: t, url: hs.URL, token: strings.TrimSpace(string(token))}, logs: logs}
}

type apiErr struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// importCorpus copies the corpus source into the server's import
// directory and returns its path there.
func (f *fixture) importCorpus(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(corpusSource)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(f.imp, "residents.csv")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// registerCorpus registers the corpus source as dataset residents and
// returns its path in the import directory and its classification.
func (f *fixture) registerCorpus(t *testing.T) (string, []byte) {
	t.Helper()
	src := f.importCorpus(t)
	classes, err := os.ReadFile(corpusClasses)
	if err != nil {
		t.Fatal(err)
	}
	if code := f.admin.call("POST", "/api/v1/datasets", map[string]string{"name": "residents", "path": src, "classes": string(classes)}, nil); code != 200 {
		t.Fatalf("register: %d", code)
	}
	return src, classes
}

// createUser makes a user with the admin's token and returns their token.
func (f *fixture) createUser(name, role, tenant string) (id, token string) {
	var out struct {
		User  struct{ ID string }
		Token struct{ Secret string }
	}
	if code := f.admin.call("POST", "/api/v1/users", map[string]string{"name": name, "role": role, "tenant_id": tenant}, &out); code != 200 {
		f.admin.t.Fatalf("create user %s: %d", name, code)
	}
	return out.User.ID, out.Token.Secret
}

func TestFirstStart(t *testing.T) {
	f := start(t)
	fi, err := os.Stat(filepath.Join(f.dir, AdminTokenFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	var me struct{ Name, Role string }
	if code := f.admin.call("GET", "/api/v1/whoami", nil, &me); code != 200 || me.Role != "admin" {
		t.Fatalf("whoami with admin.token: %d %+v", code, me)
	}
	if strings.Contains(f.logs.String(), f.admin.token) {
		t.Error("the log holds the administrator's token")
	}
	// A second start on the same directory makes no second administrator
	// and leaves the token as it was.
	f.srv.Close()
	cfg := DefaultConfig
	cfg.DataDir = f.dir
	again, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if n, _ := again.meta.CountUsers(context.Background()); n != 1 {
		t.Errorf("%d users after a second start", n)
	}
	if b, _ := os.ReadFile(filepath.Join(f.dir, AdminTokenFile)); strings.TrimSpace(string(b)) != f.admin.token {
		t.Error("a second start rewrote admin.token")
	}
}

func TestAuthentication(t *testing.T) {
	f := start(t)
	anon := f.admin.as("")
	var e apiErr
	for _, tok := range []string{"", "sluice_not-a-token"} {
		if code := anon.as(tok).call("GET", "/api/v1/whoami", nil, &e); code != 401 || e.Code != "unauthenticated" {
			t.Errorf("token %q: %d %+v, want 401 unauthenticated", tok, code, e)
		}
	}
	_, tok := f.createUser("alice", "auditor", "")
	alice := f.admin.as(tok)
	if code := alice.call("GET", "/api/v1/whoami", nil, nil); code != 200 {
		t.Fatalf("a new user's token: %d", code)
	}
	// A new token, then the old one revoked by its owner.
	var fresh struct{ ID, Secret string }
	if code := alice.call("POST", "/api/v1/tokens", map[string]string{"ttl": "1h"}, &fresh); code != 200 || fresh.Secret == "" {
		t.Fatalf("new token: %d", code)
	}
	var me struct{ ID string }
	alice.call("GET", "/api/v1/whoami", nil, &me)
	if code := alice.as(fresh.Secret).call("POST", "/api/v1/tokens/"+fresh.ID+"/revoke", nil, nil); code != 204 {
		t.Errorf("revoking one's own token: %d", code)
	}
	if code := alice.as(fresh.Secret).call("GET", "/api/v1/whoami", nil, nil); code != 401 {
		t.Errorf("a revoked token: %d, want 401", code)
	}
	// A revoked user's tokens all stop.
	f.admin.call("POST", "/api/v1/users/"+me.ID+"/revoke", nil, nil)
	if code := alice.call("GET", "/api/v1/whoami", nil, nil); code != 401 {
		t.Errorf("a revoked user: %d, want 401", code)
	}
}

// TestTenantIsolationAndRoles: another tenant's resources answer 404; a
// role that may not act answers 403; the platform roles see every tenant.
func TestTenantIsolationAndRoles(t *testing.T) {
	f := start(t)
	var acme, beta struct{ ID string }
	f.admin.call("POST", "/api/v1/tenants", map[string]string{"name": "acme"}, &acme)
	f.admin.call("POST", "/api/v1/tenants", map[string]string{"name": "beta"}, &beta)
	_, aliceTok := f.createUser("alice", "scientist", acme.ID)
	bobID, bobTok := f.createUser("bob", "scientist", beta.ID)
	_, audTok := f.createUser("audrey", "auditor", "")
	alice, bob, auditor := f.admin.as(aliceTok), f.admin.as(bobTok), f.admin.as(audTok)

	var e apiErr
	if code := alice.call("GET", "/api/v1/tenants/"+beta.ID, nil, &e); code != 404 || e.Code != "not_found" {
		t.Errorf("alice reads beta: %d %+v, want 404", code, e)
	}
	if code := alice.call("GET", "/api/v1/tenants/"+acme.ID, nil, nil); code != 200 {
		t.Errorf("alice reads her own tenant: %d", code)
	}
	if code := alice.call("GET", "/api/v1/users/"+bobID, nil, nil); code != 404 {
		t.Errorf("alice reads bob: %d, want 404", code)
	}
	var list struct{ Tenants []struct{ ID string } }
	alice.call("GET", "/api/v1/tenants", nil, &list)
	if len(list.Tenants) != 1 || list.Tenants[0].ID != acme.ID {
		t.Errorf("alice lists tenants: %+v, want acme alone", list.Tenants)
	}
	var users struct{ Users []struct{ Name string } }
	bob.call("GET", "/api/v1/users", nil, &users)
	if len(users.Users) != 1 || users.Users[0].Name != "bob" {
		t.Errorf("bob lists users: %+v, want himself alone", users.Users)
	}
	for _, tc := range []struct {
		who  client
		name string
	}{{alice, "scientist"}, {auditor, "auditor"}} {
		if code := tc.who.call("POST", "/api/v1/tenants", map[string]string{"name": "evil"}, &e); code != 403 || e.Code != "forbidden" {
			t.Errorf("%s creates a tenant: %d %+v, want 403", tc.name, code, e)
		}
		if code := tc.who.call("POST", "/api/v1/users", map[string]string{"name": "mallory", "role": "admin"}, nil); code != 403 {
			t.Errorf("%s creates an admin: %d, want 403", tc.name, code)
		}
	}
	auditor.call("GET", "/api/v1/tenants", nil, &list)
	if len(list.Tenants) != 2 {
		t.Errorf("the auditor sees %d tenants, want 2", len(list.Tenants))
	}
	// Someone else's token cannot be revoked (it does not exist for them).
	var tok struct{ ID string }
	bob.call("POST", "/api/v1/tokens", nil, &tok)
	if code := alice.call("POST", "/api/v1/tokens/"+tok.ID+"/revoke", nil, nil); code != 404 {
		t.Errorf("alice revokes bob's token: %d, want 404", code)
	}
}

func TestErrorsAndInput(t *testing.T) {
	f := start(t)
	var e apiErr
	if code := f.admin.call("POST", "/api/v1/tenants", map[string]string{"name": "Bad Name"}, &e); code != 400 || e.Code != "invalid_argument" || !strings.Contains(e.Message, "tenant name") {
		t.Errorf("bad name: %d %+v", code, e)
	}
	f.admin.call("POST", "/api/v1/tenants", map[string]string{"name": "acme"}, nil)
	if code := f.admin.call("POST", "/api/v1/tenants", map[string]string{"name": "acme"}, &e); code != 409 || e.Code != "conflict" {
		t.Errorf("duplicate: %d %+v", code, e)
	}
	if code := f.admin.call("POST", "/api/v1/users", map[string]string{"name": "x1", "role": "owner"}, &e); code != 422 && code != 400 || e.Code != "usage" {
		t.Errorf("unknown role: %d %+v, want a usage error", code, e)
	}
	// Form bodies are refused before anything reads them.
	req, _ := http.NewRequest("POST", f.admin.url+"/api/v1/tenants", strings.NewReader("name=acme2"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+f.admin.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("a form body: %d, want 415", resp.StatusCode)
	}
}

func TestOperationalEndpoints(t *testing.T) {
	f := start(t)
	get := func(path string) (int, string) {
		resp, err := http.Get(f.admin.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, _ := get(p); code != 200 {
			t.Errorf("%s: %d", p, code)
		}
	}
	f.admin.call("GET", "/api/v1/whoami", nil, nil)
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, `sluice_http_requests_total{code="200",method="GET",route="GET /api/v1/whoami"}`) {
		t.Errorf("/metrics: %d, no request count for whoami", code)
	}
	code, body := get("/api/openapi.json")
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &doc) != nil || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("/api/openapi.json: %d", code)
	}
	for _, p := range []string{"/api/v1/whoami", "/api/v1/tenants", "/api/v1/tenants/{id}", "/api/v1/users", "/api/v1/users/{id}/revoke", "/api/v1/tokens", "/api/v1/tokens/{id}/revoke"} {
		if doc.Paths[p] == nil {
			t.Errorf("the OpenAPI document lacks %s", p)
		}
	}
}

func TestConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sluice.yaml")
	os.WriteFile(file, []byte("data_dir: /from/file\nlisten: 127.0.0.1:1\ntoken_ttl: 48h\n"), 0o600)
	inside := Config{DataDir: "/srv/sluice", Listen: "x", ImportDir: "/srv/sluice/import"}
	if err := inside.Validate(); err == nil {
		t.Error("an import directory inside the data directory was accepted")
	}
	env := map[string]string{"SLUICE_LISTEN": "127.0.0.1:2"}
	c, err := LoadConfig(file, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/from/file" || c.Listen != "127.0.0.1:2" || c.TokenTTL.Hours() != 48 {
		t.Errorf("config %+v: want the file's data_dir and token_ttl, the environment's listen", c)
	}
	os.WriteFile(file, []byte("data_dri: /typo\n"), 0o600)
	if _, err := LoadConfig(file, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("an unknown key: %v, want an error naming the file", err)
	}
	env = map[string]string{"SLUICE_TOKEN_TTL": "forever"}
	if _, err := LoadConfig("", func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "SLUICE_TOKEN_TTL") {
		t.Errorf("a bad environment value: %v, want an error naming the variable", err)
	}
}

// TestAuditTrail: every call is in the trail (its attempt before it, its
// outcome after), the trail verifies with the server's public key, and it
// holds no token.
func TestAuditTrail(t *testing.T) {
	f := start(t)
	f.admin.call("POST", "/api/v1/tenants", map[string]string{"name": "acme"}, nil)
	_, tok := f.createUser("audrey", "auditor", "")
	f.admin.as("nope").call("GET", "/api/v1/whoami", nil, nil)
	var b bytes.Buffer
	if err := f.srv.audit.Export(context.Background(), time.Time{}, &b); err != nil {
		t.Fatal(err)
	}
	trail := b.String()
	for _, want := range []string{`"action":"bootstrap-admin"`, `"action":"create-tenant"`, `"result":"attempt"`, `"result":"ok"`, `"actor":"anonymous"`, `"result":"unauthenticated"`} {
		if !strings.Contains(trail, want) {
			t.Errorf("the trail lacks %s:\n%s", want, trail)
		}
	}
	f.srv.audit.Close() // signs the head
	pub, err := LoadPublicKey(filepath.Join(f.dir, PubKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(context.Background(), filepath.Join(f.dir, "audit.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if n, err := l.Verify(context.Background(), pub); err != nil || n < 6 {
		t.Errorf("Verify = %d, %v", n, err)
	}
	for _, secret := range []string{f.admin.token, tok} {
		for _, name := range []string{"audit.db", "audit.db-wal", "sluice.db", "sluice.db-wal"} {
			if data, _ := os.ReadFile(filepath.Join(f.dir, name)); bytes.Contains(data, []byte(secret)) {
				t.Errorf("%s holds a token", name)
			}
		}
	}
}

// TestAuditFailsClosed: when the trail cannot be written, a call fails and
// does nothing.
func TestAuditFailsClosed(t *testing.T) {
	f := start(t)
	f.srv.audit.Close()
	var e apiErr
	if code := f.admin.call("POST", "/api/v1/tenants", map[string]string{"name": "acme"}, &e); code != 503 || e.Code != "unavailable" {
		t.Errorf("with the trail closed: %d %+v, want 503", code, e)
	}
	if ts, _ := f.srv.meta.ListTenants(context.Background()); len(ts) != 0 {
		t.Errorf("the tenant was created without a record: %+v", ts)
	}
}

const (
	corpusSource  = "../../shared/egress-corpus/sources/residents.csv"
	corpusClasses = "../../shared/egress-corpus/sources/residents.classes.yaml"
)

// TestRegisterDataset: versions are immutable and numbered; the source is
// sealed at rest — no raw identifier value anywhere in the data directory
// — and opens again with its wrapped key; scientists see no dataset a
// scenario does not grant them.
func TestRegisterDataset(t *testing.T) {
	f := start(t)
	src := f.importCorpus(t)
	classes, err := os.ReadFile(corpusClasses)
	if err != nil {
		t.Fatal(err)
	}
	register := map[string]string{"name": "residents", "path": src, "classes": string(classes)}
	var v struct {
		Version int
		Rows    int64
		SHA256  string
		Columns []struct{ Name, Class string }
	}
	for want := 1; want <= 2; want++ {
		if code := f.admin.call("POST", "/api/v1/datasets", register, &v); code != 200 || v.Version != want {
			t.Fatalf("registration %d: %d, version %d", want, code, v.Version)
		}
	}
	if v.Rows != 6000 || len(v.Columns) == 0 || v.Columns[0].Class != "identifier" {
		t.Errorf("version %+v", v)
	}
	var list struct{ Datasets []struct{ Version int } }
	f.admin.call("GET", "/api/v1/datasets/residents", nil, &list)
	if len(list.Datasets) != 2 {
		t.Errorf("%d versions, want 2", len(list.Datasets))
	}

	// Sealed at rest: no raw identifier in any byte of the data directory.
	raw := identifierValues(t, src, string(classes))
	finder := leakcheck.New(raw)
	filepath.Walk(f.dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			b, _ := os.ReadFile(p)
			if n := finder.Count(b); n > 0 {
				t.Errorf("%s holds %d raw identifier values", p, n)
			}
		}
		return nil
	})
	// …and it opens again, whole, with its wrapped key; its confirmed
	// classification is kept as given.
	rec, err := f.srv.meta.DatasetVersion(context.Background(), "residents", 1)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Classes != string(classes) {
		t.Error("the confirmed classification was not kept")
	}
	key, err := f.srv.master.Unwrap(rec.WrappedKey)
	if err != nil {
		t.Fatal(err)
	}
	o, err := storage.GetSealed(context.Background(), f.srv.store, rec.Object, key)
	if err != nil {
		t.Fatal(err)
	}
	back, _ := io.ReadAll(o)
	o.Close()
	if want, _ := os.ReadFile(src); !bytes.Equal(back, want) {
		t.Error("the sealed source does not open to the source")
	}

	var acme struct{ ID string }
	f.admin.call("POST", "/api/v1/tenants", map[string]string{"name": "acme"}, &acme)
	_, tok := f.createUser("alice", "scientist", acme.ID)
	if code := f.admin.as(tok).call("GET", "/api/v1/datasets/residents", nil, nil); code != 404 {
		t.Errorf("a scientist reads the dataset: %d, want 404", code)
	}
	f.admin.as(tok).call("GET", "/api/v1/datasets", nil, &list)
	if len(list.Datasets) != 0 {
		t.Errorf("a scientist lists %d datasets", len(list.Datasets))
	}

	var e apiErr
	outside, _ := filepath.Abs(corpusSource)
	os.Symlink(outside, filepath.Join(f.imp, "link.csv"))
	for _, bad := range []map[string]string{
		{"name": "residents", "path": "missing.csv", "classes": string(classes)},
		{"name": "residents", "path": outside, "classes": string(classes)},
		{"name": "residents", "path": "link.csv", "classes": string(classes)},
		{"name": "residents", "path": "/etc/passwd", "classes": string(classes)},
		{"name": "residents", "path": src, "classes": "columns:\n  no_such_column: {class: identifier}\n"},
		{"name": "Bad Name", "path": src, "classes": string(classes)},
	} {
		if code := f.admin.call("POST", "/api/v1/datasets", bad, &e); code != 400 && code != 404 {
			t.Errorf("%v: %d %+v, want 400 or 404", bad["path"], code, e)
		}
		if strings.Contains(e.Message, "110") {
			t.Errorf("an error message holds digits of the data: %s", e.Message)
		}
	}
	if vs, _ := f.srv.meta.DatasetVersions(context.Background(), "residents"); len(vs) != 2 {
		t.Errorf("failed registrations left %d versions", len(vs))
	}
}

// identifierValues reads the raw values of the identifier columns of a CSV.
func identifierValues(t *testing.T, path, classesYAML string) []string {
	t.Helper()
	cls, err := dataset.ParseClasses("c.yaml", []byte(classesYAML))
	if err != nil {
		t.Fatal(err)
	}
	fh, _ := os.Open(path)
	defer fh.Close()
	rows, err := csv.NewReader(fh).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i, h := range rows[0] {
		if cls.Get(h).Class == dataset.Identifier {
			for _, r := range rows[1:] {
				out = append(out, r[i])
			}
		}
	}
	return out
}

// TestScenarioLifecycle: apply (scientist), approve (admin; keys made),
// suspend and resume (R8), terminate (keys destroyed, recorded); roles,
// tenants and the rules of an application are enforced.
func TestScenarioLifecycle(t *testing.T) {
	f := start(t)
	f.registerCorpus(t)
	var acme, beta struct{ ID string }
	f.admin.call("POST", "/api/v1/tenants", map[string]string{"name": "acme"}, &acme)
	f.admin.call("POST", "/api/v1/tenants", map[string]string{"name": "beta"}, &beta)
	_, aliceTok := f.createUser("alice", "scientist", acme.ID)
	_, bobTok := f.createUser("bob", "scientist", beta.ID)
	alice, bob := f.admin.as(aliceTok), f.admin.as(bobTok)

	until := time.Now().Add(365 * 24 * time.Hour)
	app := map[string]any{"name": "income-by-city", "purpose": "income by city for the labour bureau",
		"datasets": []map[string]any{{"name": "residents", "columns": []string{"district_code", "monthly_income"}}}, "until": until}
	var sc struct {
		ID, State string
		Datasets  []struct{ Version int }
	}
	if code := alice.call("POST", "/api/v1/scenarios", app, &sc); code != 200 || sc.State != "pending" || sc.Datasets[0].Version != 1 {
		var e apiErr
		alice.call("POST", "/api/v1/scenarios", app, &e)
		t.Fatalf("apply: %d %+v %+v", code, sc, e)
	}
	var e apiErr
	for name, bad := range map[string]map[string]any{
		"no such column": {"name": "x1", "purpose": "p", "until": until, "datasets": []map[string]any{{"name": "residents", "columns": []string{"salary"}}}},
		"no columns":     {"name": "x2", "purpose": "p", "until": until, "datasets": []map[string]any{{"name": "residents"}}},
		"four years":     {"name": "x3", "purpose": "p", "until": time.Now().Add(4 * 365 * 24 * time.Hour), "datasets": app["datasets"]},
		"no purpose":     {"name": "x4", "purpose": " ", "until": until, "datasets": app["datasets"]},
	} {
		if code := alice.call("POST", "/api/v1/scenarios", bad, &e); code != 400 {
			t.Errorf("%s: %d %+v, want 400", name, code, e)
		}
	}
	if code := bob.call("GET", "/api/v1/scenarios/"+sc.ID, nil, nil); code != 404 {
		t.Errorf("another tenant reads the scenario: %d, want 404", code)
	}
	if code := alice.call("POST", "/api/v1/scenarios/"+sc.ID+"/approve", nil, &e); code != 403 {
		t.Errorf("the scientist approves: %d %+v, want 403", code, e)
	}
	if code := f.admin.call("POST", "/api/v1/scenarios", app, nil); code != 403 {
		t.Errorf("the admin applies: %d, want 403", code)
	}
	step := func(verb, want string, code int) {
		t.Helper()
		var got struct{ State string }
		if c := f.admin.call("POST", "/api/v1/scenarios/"+sc.ID+"/"+verb, map[string]string{"comment": verb + " in the test"}, &got); c != code || code == 200 && got.State != want {
			t.Errorf("%s: %d %s, want %d %s", verb, c, got.State, code, want)
		}
	}
	step("resume", "", 409) // pending: nothing to resume
	step("approve", "active", 200)
	rec, _ := f.srv.meta.GetScenario(context.Background(), sc.ID)
	if len(rec.PseudoKey) == 0 || len(rec.ViewKey) == 0 {
		t.Fatal("an approved scenario has no keys")
	}
	if _, err := f.srv.master.Unwrap(rec.PseudoKey); err != nil {
		t.Errorf("its pseudonym key does not open: %v", err)
	}
	step("approve", "", 409) // already active
	step("suspend", "suspended", 200)
	step("resume", "active", 200)
	step("terminate", "terminated", 200)
	step("resume", "", 409)
	rec, _ = f.srv.meta.GetScenario(context.Background(), sc.ID)
	if len(rec.PseudoKey) != 0 || len(rec.ViewKey) != 0 || rec.Destroyed == "" {
		t.Errorf("terminated: keys %d/%d bytes, destroyed %q; want none and a record", len(rec.PseudoKey), len(rec.ViewKey), rec.Destroyed)
	}
	var trail bytes.Buffer
	f.srv.audit.Export(context.Background(), time.Time{}, &trail)
	if !strings.Contains(trail.String(), `"action":"destroy-scenario-keys","resource":"`+sc.ID+`"`) {
		t.Error("the destruction is not in the audit trail")
	}
	// A scenario past its period is expired, and can only be terminated.
	short := map[string]any{"name": "short", "purpose": "p", "until": time.Now().Add(300 * time.Millisecond), "datasets": app["datasets"]}
	var sc2 struct{ ID string }
	alice.call("POST", "/api/v1/scenarios", short, &sc2)
	f.admin.call("POST", "/api/v1/scenarios/"+sc2.ID+"/approve", nil, nil)
	time.Sleep(400 * time.Millisecond)
	var got struct{ State string }
	alice.call("GET", "/api/v1/scenarios/"+sc2.ID, nil, &got)
	if got.State != "expired" {
		t.Errorf("past its period: %s, want expired", got.State)
	}
	if code := f.admin.call("POST", "/api/v1/scenarios/"+sc2.ID+"/suspend", nil, nil); code != 409 {
		t.Errorf("suspending an expired scenario: %d, want 409", code)
	}
}

// TestAuditorReadsAndChangesNothing: an auditor reads and verifies the
// trail through the API and is refused every change; a scientist cannot
// read the trail.
func TestAuditorReadsAndChangesNothing(t *testing.T) {
	f := start(t)
	var acme struct{ ID string }
	f.admin.call("POST", "/api/v1/tenants", map[string]string{"name": "acme"}, &acme)
	_, audTok := f.createUser("audrey", "auditor", "")
	_, sciTok := f.createUser("alice", "scientist", acme.ID)
	auditor, scientist := f.admin.as(audTok), f.admin.as(sciTok)

	var trail struct {
		Records []struct {
			Seq            int64
			Action, Result string
		}
	}
	if code := auditor.call("GET", "/api/v1/audit?limit=5", nil, &trail); code != 200 || len(trail.Records) != 5 || trail.Records[0].Seq != 1 {
		t.Fatalf("the auditor reads the trail: %d, %d records", code, len(trail.Records))
	}
	var v struct {
		Intact  bool
		Records int64
		Problem string
	}
	if code := auditor.call("GET", "/api/v1/audit/verify", nil, &v); code != 200 || !v.Intact || v.Records < 5 {
		t.Errorf("verify: %d %+v", code, v)
	}
	if code := scientist.call("GET", "/api/v1/audit", nil, nil); code != 403 {
		t.Errorf("a scientist reads the trail: %d, want 403", code)
	}
	src, _ := filepath.Abs(corpusSource)
	classes, _ := os.ReadFile(corpusClasses)
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/api/v1/tenants", map[string]string{"name": "evil"}},
		{"POST", "/api/v1/users", map[string]string{"name": "mallory", "role": "admin"}},
		{"POST", "/api/v1/datasets", map[string]string{"name": "residents", "path": src, "classes": string(classes)}},
		{"POST", "/api/v1/scenarios", map[string]any{"name": "x1", "purpose": "p", "until": time.Now().Add(time.Hour), "datasets": []map[string]any{{"name": "residents", "columns": []string{"gender"}}}}},
		{"POST", "/api/v1/scenarios/scn_x/approve", nil},
	} {
		if code := auditor.call(c.method, c.path, c.body, nil); code != 403 {
			t.Errorf("the auditor %s %s: %d, want 403", c.method, c.path, code)
		}
	}
	// A record edited underneath the running server shows through the API.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(f.dir, "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE records SET body = replace(body, '"create-tenant"', '"delete-tenant"') WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if code := auditor.call("GET", "/api/v1/audit/verify", nil, &v); code != 200 || v.Intact || !strings.Contains(v.Problem, "record 3") {
		t.Errorf("verify after an edit: %d %+v, want record 3 named", code, v)
	}
}

// TestScenarioViews: a view holds the approved columns only, masked; its
// pseudonyms are the scenario's own (two scenarios' never join); no raw
// identifier is in it; the dev view is a sample; a suspended scenario has
// no views; termination deletes them.
func TestScenarioViews(t *testing.T) {
	ctx := context.Background()
	f := start(t)
	src, classes := f.registerCorpus(t)
	var acme struct{ ID string }
	f.admin.call("POST", "/api/v1/tenants", map[string]string{"name": "acme"}, &acme)
	_, tok := f.createUser("alice", "scientist", acme.ID)
	alice := f.admin.as(tok)
	cols := []string{"person_id", "district_code", "monthly_income"}
	scenario := func(name string) string {
		var sc struct{ ID string }
		alice.call("POST", "/api/v1/scenarios", map[string]any{"name": name, "purpose": "p", "until": time.Now().Add(time.Hour),
			"datasets": []map[string]any{{"name": "residents", "columns": cols}}}, &sc)
		if code := f.admin.call("POST", "/api/v1/scenarios/"+sc.ID+"/approve", nil, nil); code != 200 {
			t.Fatalf("approve: %d", code)
		}
		return sc.ID
	}
	a, b := scenario("first"), scenario("second")
	var view struct {
		Rows    int64
		Columns []string
	}
	if code := alice.call("POST", "/api/v1/scenarios/"+a+"/views", map[string]string{"dataset": "residents", "kind": "prod"}, &view); code != 200 {
		var e apiErr
		alice.call("POST", "/api/v1/scenarios/"+a+"/views", map[string]string{"dataset": "residents", "kind": "prod"}, &e)
		t.Fatalf("prod view: %d %+v", code, e)
	}
	if view.Rows != 6000 || strings.Join(view.Columns, ",") != strings.Join(cols, ",") {
		t.Errorf("prod view: %d rows, columns %v; want 6000 and exactly %v", view.Rows, view.Columns, cols)
	}
	alice.call("POST", "/api/v1/scenarios/"+b+"/views", map[string]string{"dataset": "residents", "kind": "prod"}, nil)
	// Read both views back: no raw identifier, and pseudonyms that differ.
	raw := leakcheck.New(identifierValues(t, src, string(classes)))
	first := map[string]string{}
	for _, id := range []string{a, b} {
		sc, _ := f.srv.meta.GetScenario(ctx, id)
		key, _ := f.srv.master.Unwrap(sc.ViewKey)
		o, err := storage.GetSealed(ctx, f.srv.store, viewObject(id, "residents", 1, ViewProd), key)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(o)
		o.Close()
		if n := raw.Count(data); n > 0 {
			t.Errorf("the view of %s holds %d raw identifier values", id, n)
		}
		i := bytes.Index(data, []byte("psn_"))
		if i < 0 {
			t.Fatalf("no pseudonym in the view of %s", id)
		}
		first[id] = string(data[i : i+28])
	}
	if first[a] == first[b] {
		t.Error("two scenarios give the same person the same pseudonym")
	}
	var dev struct{ Rows int64 }
	alice.call("POST", "/api/v1/scenarios/"+a+"/views", map[string]string{"dataset": "residents", "kind": "dev"}, &dev)
	if dev.Rows == 0 || dev.Rows > 1000 {
		t.Errorf("dev view: %d rows, want a sample of about 600", dev.Rows)
	}
	f.admin.call("POST", "/api/v1/scenarios/"+a+"/suspend", nil, nil)
	if code := alice.call("POST", "/api/v1/scenarios/"+a+"/views", map[string]string{"dataset": "residents", "kind": "prod"}, nil); code != 409 {
		t.Errorf("a view of a suspended scenario: %d, want 409", code)
	}
	f.admin.call("POST", "/api/v1/scenarios/"+a+"/terminate", nil, nil)
	for _, kind := range []string{ViewProd, ViewDev} {
		if _, err := f.srv.store.Get(ctx, viewObject(a, "residents", 1, kind)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("the %s view of a terminated scenario is still there: %v", kind, err)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(f.dir, "tmp")); len(entries) != 0 {
		t.Errorf("scratch files left: %d", len(entries))
	}
}

// TestAuthFailureAlert: ten failed authentications from one client within
// the window raise one alert: listed for the security role, in the trail,
// and counted; more failures in the same window raise no second one.
func TestAuthFailureAlert(t *testing.T) {
	f := start(t)
	_, secTok := f.createUser("sam", "security", "")
	for range authFailures.Threshold + 3 {
		f.admin.as("sluice_guess").call("GET", "/api/v1/whoami", nil, nil)
	}
	var list struct {
		Alerts []struct{ Kind, Subject, Detail string }
	}
	if code := f.admin.as(secTok).call("GET", "/api/v1/alerts", nil, &list); code != 200 || len(list.Alerts) != 1 {
		t.Fatalf("alerts: %d %+v, want one", code, list.Alerts)
	}
	if a := list.Alerts[0]; a.Kind != "auth-failures" || !strings.HasPrefix(a.Subject, "client 127.0.0.1") {
		t.Errorf("alert %+v", a)
	}
	var trail bytes.Buffer
	f.srv.audit.Export(context.Background(), time.Time{}, &trail)
	if !strings.Contains(trail.String(), `"action":"alert"`) {
		t.Error("the alert is not in the trail")
	}
	resp, err := http.Get(f.admin.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `sluice_alerts_total{kind="auth-failures"} 1`) {
		t.Error("the alert is not counted")
	}
	_, sciTok := f.createUser("carl", "auditor", "")
	if code := f.admin.as(sciTok).call("GET", "/api/v1/alerts", nil, nil); code != 200 {
		t.Errorf("the auditor reads alerts: %d", code)
	}
}

// TestUploadSource: a source streamed to the server is sealed as it
// arrives (no raw identifier in the data directory), checked and
// registered from the sealed upload; a registration that fails keeps the
// upload for another try; only an administrator uploads.
func TestUploadSource(t *testing.T) {
	f := start(t)
	src, _ := os.ReadFile(corpusSource)
	classes, _ := os.ReadFile(corpusClasses)
	send := func(c client, name string, body []byte) (map[string]any, int) {
		data, code := c.raw("POST", "/api/v1/uploads?name="+name, "application/octet-stream", body)
		out := map[string]any{}
		json.Unmarshal(data, &out)
		return out, code
	}
	up, code := send(f.admin, "residents.csv", src)
	id, _ := up["id"].(string)
	if code != 200 || id == "" || up["size"].(float64) != float64(len(src)) {
		t.Fatalf("upload: %d %v", code, up)
	}
	var e apiErr
	bad := map[string]string{"name": "residents", "upload": id, "classes": "columns:\n  no_such_column: {class: identifier}\n"}
	if code := f.admin.call("POST", "/api/v1/datasets", bad, &e); code != 400 {
		t.Errorf("a registration with a wrong classification: %d %+v", code, e)
	}
	var v struct {
		Version int
		Rows    int64
		SHA256  string
	}
	if code := f.admin.call("POST", "/api/v1/datasets", map[string]string{"name": "residents", "upload": id, "classes": string(classes)}, &v); code != 200 || v.Rows != 6000 || v.Version != 1 {
		t.Fatalf("register the upload after a failed try: %d %+v", code, v)
	}
	if sum := sha256.Sum256(src); v.SHA256 != hex.EncodeToString(sum[:]) {
		t.Error("the version's sha256 is not the source's")
	}
	if code := f.admin.call("POST", "/api/v1/datasets", map[string]string{"name": "residents", "upload": id, "classes": string(classes)}, &e); code != 404 {
		t.Errorf("an upload registered twice: %d %+v", code, e)
	}
	if code := f.admin.call("POST", "/api/v1/datasets", map[string]string{"name": "residents", "classes": string(classes)}, &e); code != 400 {
		t.Errorf("neither path nor upload: %d", code)
	}
	if _, code := send(f.admin, "residents.xlsx", src); code != 400 {
		t.Errorf("an unknown format: %d", code)
	}
	if _, code := send(f.admin, "empty.csv", nil); code != 400 {
		t.Errorf("an empty upload: %d", code)
	}
	_, audTok := f.createUser("audrey", "auditor", "")
	if _, code := send(f.admin.as(audTok), "residents.csv", src); code != 403 {
		t.Errorf("an auditor uploads: %d", code)
	}
	// The view of a scenario reads the registered upload like any source.
	var acme struct{ ID string }
	f.admin.call("POST", "/api/v1/tenants", map[string]string{"name": "acme"}, &acme)
	_, tok := f.createUser("alice", "scientist", acme.ID)
	var sc struct{ ID string }
	f.admin.as(tok).call("POST", "/api/v1/scenarios", map[string]any{"name": "up", "purpose": "p", "until": time.Now().Add(time.Hour),
		"datasets": []map[string]any{{"name": "residents", "columns": []string{"district_code"}}}}, &sc)
	f.admin.call("POST", "/api/v1/scenarios/"+sc.ID+"/approve", nil, nil)
	var view struct{ Rows int64 }
	if code := f.admin.as(tok).call("POST", "/api/v1/scenarios/"+sc.ID+"/views", map[string]string{"dataset": "residents", "kind": "prod"}, &view); code != 200 || view.Rows != 6000 {
		t.Errorf("a view of an uploaded source: %d %+v", code, view)
	}
	raw := leakcheck.New(identifierValues(t, corpusSource, string(classes)))
	filepath.Walk(f.dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			if n := raw.Count(b); n > 0 {
				t.Errorf("%s holds %d raw identifier values", p, n)
			}
		}
		return nil
	})
}

// TestScenarioAmendment: a change of columns is a new version of the
// scenario, approved again; until then the scenario keeps its list; the
// approved version drops the cached views of the old list.
func TestScenarioAmendment(t *testing.T) {
	ctx := context.Background()
	f := start(t)
	f.registerCorpus(t)
	var acme, beta struct{ ID string }
	f.admin.call("POST", "/api/v1/tenants", map[string]string{"name": "acme"}, &acme)
	f.admin.call("POST", "/api/v1/tenants", map[string]string{"name": "beta"}, &beta)
	_, aliceTok := f.createUser("alice", "scientist", acme.ID)
	_, bobTok := f.createUser("bob", "scientist", beta.ID)
	alice, bob := f.admin.as(aliceTok), f.admin.as(bobTok)
	var sc struct {
		ID       string
		Version  int
		Datasets []struct {
			Columns []string
		}
	}
	alice.call("POST", "/api/v1/scenarios", map[string]any{"name": "amend", "purpose": "p", "until": time.Now().Add(time.Hour),
		"datasets": []map[string]any{{"name": "residents", "columns": []string{"district_code"}}}}, &sc)
	list := func(cols ...string) map[string]any {
		return map[string]any{"datasets": []map[string]any{{"name": "residents", "columns": cols}}}
	}
	var e apiErr
	if code := alice.call("POST", "/api/v1/scenarios/"+sc.ID+"/amendments", list("district_code", "monthly_income"), &e); code != 409 {
		t.Errorf("amending a pending scenario: %d %+v", code, e)
	}
	f.admin.call("POST", "/api/v1/scenarios/"+sc.ID+"/approve", nil, nil)
	alice.call("POST", "/api/v1/scenarios/"+sc.ID+"/views", map[string]string{"dataset": "residents", "kind": "prod"}, nil)
	var a struct {
		Version int
		State   string
	}
	if code := alice.call("POST", "/api/v1/scenarios/"+sc.ID+"/amendments", list("district_code", "monthly_income"), &a); code != 200 || a.Version != 2 || a.State != "pending" {
		t.Fatalf("amend: %d %+v", code, a)
	}
	for _, tc := range []struct {
		who  client
		body map[string]any
		want int
	}{
		{alice, list("district_code"), 409},  // one pending at a time
		{alice, list("no_such_column"), 400}, // checked like an application
		{bob, list("district_code"), 404},    // another tenant's scenario
		{f.admin, list("district_code"), 403},
	} {
		if code := tc.who.call("POST", "/api/v1/scenarios/"+sc.ID+"/amendments", tc.body, &e); code != tc.want {
			t.Errorf("amend %v: %d %+v, want %d", tc.body, code, e, tc.want)
		}
	}
	// Pending: the scenario keeps its list and version.
	alice.call("GET", "/api/v1/scenarios/"+sc.ID, nil, &sc)
	if sc.Version != 1 || len(sc.Datasets[0].Columns) != 1 {
		t.Errorf("a pending amendment changed the scenario: %+v", sc)
	}
	if code := alice.call("POST", "/api/v1/scenarios/"+sc.ID+"/amendments/2/approve", nil, nil); code != 403 {
		t.Errorf("a scientist approves an amendment: %d", code)
	}
	if code := f.admin.call("POST", "/api/v1/scenarios/"+sc.ID+"/amendments/2/approve", map[string]string{"comment": "ok"}, &sc); code != 200 || sc.Version != 2 || len(sc.Datasets[0].Columns) != 2 {
		t.Fatalf("approve the amendment: %d %+v", code, sc)
	}
	if _, err := f.srv.store.Get(ctx, viewObject(sc.ID, "residents", 1, ViewProd)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the view of the old list is still there: %v", err)
	}
	if code := f.admin.call("POST", "/api/v1/scenarios/"+sc.ID+"/amendments/2/reject", nil, &e); code != 409 {
		t.Errorf("deciding an amendment twice: %d", code)
	}
	var view struct{ Columns []string }
	alice.call("POST", "/api/v1/scenarios/"+sc.ID+"/views", map[string]string{"dataset": "residents", "kind": "prod"}, &view)
	if strings.Join(view.Columns, ",") != "district_code,monthly_income" {
		t.Errorf("the view after the amendment has %v", view.Columns)
	}
	// A rejected one changes nothing.
	alice.call("POST", "/api/v1/scenarios/"+sc.ID+"/amendments", list("monthly_income"), &a)
	f.admin.call("POST", "/api/v1/scenarios/"+sc.ID+"/amendments/3/reject", nil, &sc)
	var all struct{ Amendments []struct{ State string } }
	alice.call("GET", "/api/v1/scenarios/"+sc.ID+"/amendments", nil, &all)
	if sc.Version != 2 || len(all.Amendments) != 2 || all.Amendments[1].State != "rejected" {
		t.Errorf("after a rejection: version %d, amendments %+v", sc.Version, all.Amendments)
	}
}

// TestRegistrationProgress: POST /api/v1/dataset-registrations answers
// with progress lines, then the outcome; a failure is the last line, and
// the trail records it as a failure.
func TestRegistrationProgress(t *testing.T) {
	f := start(t)
	src := f.importCorpus(t)
	classes, _ := os.ReadFile(corpusClasses)
	lines := func(body map[string]string) []RegistrationEvent {
		b, _ := json.Marshal(body)
		data, _ := f.admin.raw("POST", "/api/v1/dataset-registrations", "application/json", b)
		var out []RegistrationEvent
		dec := json.NewDecoder(bytes.NewReader(data))
		for {
			var ev RegistrationEvent
			if dec.Decode(&ev) != nil {
				return out
			}
			out = append(out, ev)
		}
	}
	evs := lines(map[string]string{"name": "residents", "path": src, "classes": string(classes)})
	if len(evs) < 2 || evs[0].Phase != "check" || evs[len(evs)-1].Version == nil || evs[len(evs)-1].Version.Rows != 6000 {
		t.Fatalf("progress then the version: %+v", evs)
	}
	evs = lines(map[string]string{"name": "residents", "path": src, "classes": "columns:\n  no_such_column: {class: identifier}\n"})
	if len(evs) == 0 || evs[len(evs)-1].Error == nil || evs[len(evs)-1].Error.Code != "invalid_input" {
		t.Fatalf("a failed registration's last line: %+v", evs)
	}
	recs, err := f.srv.audit.Records(context.Background(), time.Time{}, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var results []string
	for _, r := range recs {
		if r.Action == "register-dataset" {
			results = append(results, r.Result)
		}
	}
	if strings.Join(results, ",") != "ok,invalid_input" {
		t.Errorf("the trail's registration outcomes: %v", results)
	}
}

// TestCustomProfile: a dataset registered with a profile's YAML masks its
// prod views with it; a profile that does not parse is refused, naming it.
func TestCustomProfile(t *testing.T) {
	f := start(t)
	src := f.importCorpus(t)
	classes, _ := os.ReadFile(corpusClasses)
	profile := "name: no-income\ndescription: income withheld\nclasses:\n  identifier: {op: pseudonym}\ncolumns:\n  monthly_income: {op: drop}\n"
	var v struct{ Profile string }
	if code := f.admin.call("POST", "/api/v1/datasets", map[string]string{"name": "residents", "path": src, "classes": string(classes), "profile": profile}, &v); code != 200 || v.Profile != "no-income" {
		t.Fatalf("register with a profile's YAML: %d %+v", code, v)
	}
	var e apiErr
	if code := f.admin.call("POST", "/api/v1/datasets", map[string]string{"name": "residents", "path": src, "classes": string(classes), "profile": "columns:\n  x: {op: explode}\n"}, &e); code != 400 || !strings.Contains(e.Message, "residents.profile.yaml") {
		t.Errorf("a profile that does not parse: %d %+v", code, e)
	}
	var acme struct{ ID string }
	f.admin.call("POST", "/api/v1/tenants", map[string]string{"name": "acme"}, &acme)
	_, tok := f.createUser("alice", "scientist", acme.ID)
	var sc struct{ ID string }
	f.admin.as(tok).call("POST", "/api/v1/scenarios", map[string]any{"name": "custom", "purpose": "p", "until": time.Now().Add(time.Hour),
		"datasets": []map[string]any{{"name": "residents", "version": 1, "columns": []string{"district_code", "monthly_income"}}}}, &sc)
	f.admin.call("POST", "/api/v1/scenarios/"+sc.ID+"/approve", nil, nil)
	var view struct{ Columns []string }
	if code := f.admin.as(tok).call("POST", "/api/v1/scenarios/"+sc.ID+"/views", map[string]string{"dataset": "residents", "kind": "prod"}, &view); code != 200 || strings.Join(view.Columns, ",") != "district_code" {
		t.Errorf("the prod view under the dataset's own profile: %d %v, want district_code alone", code, view.Columns)
	}
}
