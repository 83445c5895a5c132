// Package client is the Go client of the Sluice API (the CLI's way to a
// server): JSON over HTTP with a bearer token, the API's errors returned
// as *Error with their stable code and status.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/errcode"
	"github.com/sluicehq/sluice/metadata"
	"github.com/sluicehq/sluice/server"
)

// Client talks to one server as one user.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// New returns a client of the server at base (e.g. http://127.0.0.1:8420).
func New(base, token string) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server address %q: use http://HOST:PORT or https://HOST:PORT", base)
	}
	return &Client{base: u, token: token, http: &http.Client{Timeout: 60 * time.Second}}, nil
}

// Error is an error the API answered with.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// ErrUnreachable: no answer from the server.
var ErrUnreachable = errors.New("server unreachable")

// call does a request and returns its decoded answer.
func call[T any](ctx context.Context, c *Client, method, path string, in any) (T, error) {
	var out T
	err := c.do(ctx, method, path, in, &out)
	return out, err
}

// do sends a JSON request and decodes the JSON answer into out.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	contentType := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, contentType = bytes.NewReader(b), "application/json"
	}
	resp, err := c.send(ctx, c.http, method, path, contentType, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}

// send does a request with a body of contentType (none when body is
// nil); an error answer is an *Error, its body read and closed.
func (c *Client) send(ctx context.Context, hc *http.Client, method, path, contentType string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", c.base, err, ErrUnreachable)
	}
	if resp.StatusCode < 400 {
		return resp, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	e := &Error{Status: resp.StatusCode}
	if json.Unmarshal(data, e) != nil || e.Code == "" {
		e.Code, e.Message = "http_"+fmt.Sprint(resp.StatusCode), fmt.Sprintf("%s %s: %s", method, path, resp.Status)
	}
	return nil, e
}

// stream sends a request with a raw body (none when nil) and copies the
// answer to w as it comes, with no overall time limit (a followed log lasts
// as long as its job, an upload as long as its file).
func (c *Client) stream(ctx context.Context, method, path, contentType string, body io.Reader, w io.Writer) error {
	resp, err := c.send(ctx, &http.Client{Transport: c.http.Transport}, method, path, contentType, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

// upload streams a raw body and decodes the JSON answer.
func upload[T any](ctx context.Context, c *Client, path, contentType string, body io.Reader) (T, error) {
	var out T
	var buf bytes.Buffer
	if err := c.stream(ctx, "POST", path, contentType, body, &buf); err != nil {
		return out, err
	}
	err := json.Unmarshal(buf.Bytes(), &out)
	return out, err
}

// Whoami is the caller.
func (c *Client) Whoami(ctx context.Context) (metadata.User, error) {
	return call[metadata.User](ctx, c, "GET", "/api/v1/whoami", nil)
}

// CreateTenant creates a tenant.
func (c *Client) CreateTenant(ctx context.Context, name string) (metadata.Tenant, error) {
	return call[metadata.Tenant](ctx, c, "POST", "/api/v1/tenants", map[string]string{"name": name})
}

// ListTenants lists the tenants the caller may see.
func (c *Client) ListTenants(ctx context.Context) ([]metadata.Tenant, error) {
	out, err := call[struct{ Tenants []metadata.Tenant }](ctx, c, "GET", "/api/v1/tenants", nil)
	return out.Tenants, err
}

// NewToken is a token with its secret, as the server shows it once.
type NewToken struct {
	metadata.Token
	Secret string `json:"secret"`
}

// CreatedUser is a new user and their first token.
type CreatedUser struct {
	User  metadata.User `json:"user"`
	Token NewToken      `json:"token"`
}

// CreateUser creates a user and their first token.
func (c *Client) CreateUser(ctx context.Context, name string, role metadata.Role, tenantID, tokenTTL string) (CreatedUser, error) {
	in := map[string]string{"name": name, "role": string(role)}
	if tenantID != "" {
		in["tenant_id"] = tenantID
	}
	if tokenTTL != "" {
		in["token_ttl"] = tokenTTL
	}
	return call[CreatedUser](ctx, c, "POST", "/api/v1/users", in)
}

// ListUsers lists the users the caller may see.
func (c *Client) ListUsers(ctx context.Context) ([]metadata.User, error) {
	out, err := call[struct{ Users []metadata.User }](ctx, c, "GET", "/api/v1/users", nil)
	return out.Users, err
}

// RevokeUser revokes a user and all their tokens.
func (c *Client) RevokeUser(ctx context.Context, id string) (metadata.User, error) {
	return call[metadata.User](ctx, c, "POST", "/api/v1/users/"+url.PathEscape(id)+"/revoke", nil)
}

// RegisterDataset registers a version of a dataset from a file the server
// can read, with its confirmed classification (classes.yaml content).
func (c *Client) RegisterDataset(ctx context.Context, name, path, classes, profile string) (metadata.DatasetVersion, error) {
	in := map[string]string{"name": name, "path": path, "classes": classes}
	if profile != "" {
		in["profile"] = profile
	}
	return call[metadata.DatasetVersion](ctx, c, "POST", "/api/v1/datasets", in)
}

// ListDatasets lists the latest version of every dataset the caller may see.
func (c *Client) ListDatasets(ctx context.Context) ([]metadata.DatasetVersion, error) {
	out, err := call[struct{ Datasets []metadata.DatasetVersion }](ctx, c, "GET", "/api/v1/datasets", nil)
	return out.Datasets, err
}

// DatasetVersions lists every version of a dataset.
func (c *Client) DatasetVersions(ctx context.Context, name string) ([]metadata.DatasetVersion, error) {
	out, err := call[struct{ Datasets []metadata.DatasetVersion }](ctx, c, "GET", "/api/v1/datasets/"+url.PathEscape(name), nil)
	return out.Datasets, err
}

// Application is what a scientist applies for.
type Application struct {
	Name     string                     `json:"name"`
	Purpose  string                     `json:"purpose"`
	Datasets []metadata.ScenarioDataset `json:"datasets"`
	Products []string                   `json:"products,omitempty"`
	Until    time.Time                  `json:"until"`
}

// ApplyScenario applies for a scenario.
func (c *Client) ApplyScenario(ctx context.Context, a Application) (metadata.Scenario, error) {
	return call[metadata.Scenario](ctx, c, "POST", "/api/v1/scenarios", a)
}

// DecideScenario takes a decision (approve, reject, suspend, resume,
// terminate) on a scenario.
func (c *Client) DecideScenario(ctx context.Context, id, verb, comment string) (metadata.Scenario, error) {
	return call[metadata.Scenario](ctx, c, "POST", "/api/v1/scenarios/"+url.PathEscape(id)+"/"+verb, map[string]string{"comment": comment})
}

// ListScenarios lists the scenarios the caller may see.
func (c *Client) ListScenarios(ctx context.Context) ([]metadata.Scenario, error) {
	out, err := call[struct{ Scenarios []metadata.Scenario }](ctx, c, "GET", "/api/v1/scenarios", nil)
	return out.Scenarios, err
}

// Scenario reads a scenario.
func (c *Client) Scenario(ctx context.Context, id string) (metadata.Scenario, error) {
	return call[metadata.Scenario](ctx, c, "GET", "/api/v1/scenarios/"+url.PathEscape(id), nil)
}

// ListAlerts lists the alerts since a time (the last 30 days when zero).
func (c *Client) ListAlerts(ctx context.Context, since time.Time) ([]metadata.Alert, error) {
	q := ""
	if !since.IsZero() {
		q = "?since=" + url.QueryEscape(since.Format(time.RFC3339))
	}
	out, err := call[struct{ Alerts []metadata.Alert }](ctx, c, "GET", "/api/v1/alerts"+q, nil)
	return out.Alerts, err
}

// UploadCode sends a code bundle (.tar.gz); the server names it by its
// sha256.
func (c *Client) UploadCode(ctx context.Context, bundle io.Reader) (metadata.CodeBundle, error) {
	return upload[metadata.CodeBundle](ctx, c, "/api/v1/code", "application/gzip", bundle)
}

// JobRequest is a job to submit.
type JobRequest struct {
	Scenario string           `json:"scenario"`
	Kind     string           `json:"kind"`
	Image    string           `json:"image"`
	Code     string           `json:"code"`
	Command  []string         `json:"command"`
	Runtime  string           `json:"runtime,omitempty"`
	Limits   server.JobLimits `json:"limits,omitzero"`
}

// SubmitJob submits a job; the admission policy's refusal is an *Error
// with code "denied" and its reasons in the message.
func (c *Client) SubmitJob(ctx context.Context, r JobRequest) (server.JobView, error) {
	return call[server.JobView](ctx, c, "POST", "/api/v1/jobs", r)
}

// Job reads a job.
func (c *Client) Job(ctx context.Context, id string) (server.JobView, error) {
	return call[server.JobView](ctx, c, "GET", "/api/v1/jobs/"+url.PathEscape(id), nil)
}

// ListJobs lists the jobs the caller may see, of a scenario or in a state
// when given.
func (c *Client) ListJobs(ctx context.Context, scenario, state string) ([]server.JobView, error) {
	q := url.Values{}
	if scenario != "" {
		q.Set("scenario", scenario)
	}
	if state != "" {
		q.Set("state", state)
	}
	path := "/api/v1/jobs"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	out, err := call[struct{ Jobs []server.JobView }](ctx, c, "GET", path, nil)
	return out.Jobs, err
}

// CancelJob stops a job.
func (c *Client) CancelJob(ctx context.Context, id string) (server.JobView, error) {
	return call[server.JobView](ctx, c, "POST", "/api/v1/jobs/"+url.PathEscape(id)+"/cancel", nil)
}

// Logs writes a dev job's stdout or stderr to w; with follow, until the
// job ends.
func (c *Client) Logs(ctx context.Context, id, stream string, follow bool, w io.Writer) error {
	path := "/api/v1/jobs/" + url.PathEscape(id) + "/logs/" + url.PathEscape(stream)
	if follow {
		path += "?follow=true"
	}
	return c.stream(ctx, "GET", path, "", nil, w)
}

// Output writes one output of a dev job to w.
func (c *Client) Output(ctx context.Context, id, path string, w io.Writer) error {
	return c.stream(ctx, "GET", "/api/v1/jobs/"+url.PathEscape(id)+"/output?path="+url.QueryEscape(path), "", nil, w)
}

// UploadSource streams a dataset source to the server (admin), sealed as
// it arrives; name's extension says its format. Register it with
// RegisterUpload.
func (c *Client) UploadSource(ctx context.Context, name string, r io.Reader) (metadata.Upload, error) {
	return upload[metadata.Upload](ctx, c, "/api/v1/uploads?name="+url.QueryEscape(name), "application/octet-stream", r)
}

// Registration is a dataset version to register: from a file in the
// server's import directory (Path) or from an upload (Upload).
type Registration struct {
	Name    string `json:"name"`
	Path    string `json:"path,omitempty"`
	Upload  string `json:"upload,omitempty"`
	Classes string `json:"classes"`
	Profile string `json:"profile,omitempty"`
}

// RegisterWithProgress registers a dataset version, telling progress each
// progress event the server sends (rows checked, bytes sealed) as it comes.
func (c *Client) RegisterWithProgress(ctx context.Context, r Registration, progress func(server.RegistrationEvent)) (metadata.DatasetVersion, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return metadata.DatasetVersion{}, err
	}
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := c.stream(ctx, "POST", "/api/v1/dataset-registrations", "application/json", bytes.NewReader(b), pw)
		pw.CloseWithError(err)
		errc <- err
	}()
	var last server.RegistrationEvent
	dec := json.NewDecoder(pr)
	for {
		var ev server.RegistrationEvent
		if err := dec.Decode(&ev); err != nil {
			pr.CloseWithError(err)
			if serr := <-errc; serr != nil {
				return metadata.DatasetVersion{}, serr
			}
			if !errors.Is(err, io.EOF) {
				return metadata.DatasetVersion{}, fmt.Errorf("the server's progress: %v", err)
			}
			break
		}
		if ev.Phase != "" && progress != nil {
			progress(ev)
		}
		last = ev
	}
	switch {
	case last.Error != nil:
		return metadata.DatasetVersion{}, &Error{Status: errcode.ByCode(last.Error.Code).HTTP, Code: last.Error.Code, Message: last.Error.Message}
	case last.Version == nil:
		return metadata.DatasetVersion{}, errors.New("the server ended the registration without an outcome")
	}
	return *last.Version, nil
}

// AmendScenario proposes a new data list for a scenario.
func (c *Client) AmendScenario(ctx context.Context, id string, datasets []metadata.ScenarioDataset) (metadata.Amendment, error) {
	return call[metadata.Amendment](ctx, c, "POST", "/api/v1/scenarios/"+url.PathEscape(id)+"/amendments", map[string]any{"datasets": datasets})
}

// Amendments lists a scenario's amendments.
func (c *Client) Amendments(ctx context.Context, id string) ([]metadata.Amendment, error) {
	out, err := call[struct{ Amendments []metadata.Amendment }](ctx, c, "GET", "/api/v1/scenarios/"+url.PathEscape(id)+"/amendments", nil)
	return out.Amendments, err
}

// DecideAmendment approves or rejects (verb) an amendment.
func (c *Client) DecideAmendment(ctx context.Context, id string, version int, verb, comment string) (metadata.Scenario, error) {
	return call[metadata.Scenario](ctx, c, "POST", fmt.Sprintf("/api/v1/scenarios/%s/amendments/%d/%s", url.PathEscape(id), version, verb), map[string]string{"comment": comment})
}

// ListEgress lists the egress requests the caller may see.
func (c *Client) ListEgress(ctx context.Context) ([]metadata.EgressRequest, error) {
	out, err := call[struct{ Requests []metadata.EgressRequest }](ctx, c, "GET", "/api/v1/egress", nil)
	return out.Requests, err
}

// Egress reads an egress request with its products' decisions.
func (c *Client) Egress(ctx context.Context, id string) (metadata.EgressRequest, error) {
	return call[metadata.EgressRequest](ctx, c, "GET", "/api/v1/egress/"+url.PathEscape(id), nil)
}

// WithdrawEgress takes an egress request back.
func (c *Client) WithdrawEgress(ctx context.Context, id string) (metadata.EgressRequest, error) {
	return call[metadata.EgressRequest](ctx, c, "POST", "/api/v1/egress/"+url.PathEscape(id)+"/withdraw", nil)
}

// JustifyEgress tells the reviewers why an egress request's products
// should leave.
func (c *Client) JustifyEgress(ctx context.Context, id, text string) (metadata.EgressRequest, error) {
	return call[metadata.EgressRequest](ctx, c, "POST", "/api/v1/egress/"+url.PathEscape(id)+"/justify", map[string]string{"text": text})
}
