package egress

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/sluicehq/sluice/policy"
)

// Gate checks products against one source. Checks may run concurrently;
// the index may be shared by several gates. Set scenario thresholds before
// the first check.
type Gate struct {
	ix       *Index
	policy   *policy.Engine
	scenario map[string]any // scenario thresholds (may only tighten)

	mu       sync.Mutex
	released []*Product  // appended to, never changed
	th       *Thresholds // effective thresholds, asked of the policy once
}

// NewGate returns a gate over a source index and a policy.
func NewGate(ix *Index, p *policy.Engine) *Gate { return &Gate{ix: ix, policy: p} }

// WithScenarioThresholds sets thresholds a scenario asks for; the policy
// keeps the stricter of them and the platform's.
func (g *Gate) WithScenarioThresholds(th map[string]any) *Gate {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.scenario, g.th = th, nil
	return g
}

// thresholds asks the policy for the effective thresholds, once per gate.
func (g *Gate) thresholds(ctx context.Context) (Thresholds, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.th == nil {
		base := map[string]any{}
		if g.scenario != nil {
			base["scenario"] = map[string]any{"thresholds": g.scenario}
		}
		m, err := g.policy.Thresholds(ctx, base)
		if err != nil {
			return Thresholds{}, err
		}
		th := ThresholdsFrom(m)
		g.th = &th
	}
	return *g.th, nil
}

// AddReleased parses products already released from the same source (files
// or directories of them), for the differencing detector.
func (g *Gate) AddReleased(ctx context.Context, paths ...string) error {
	for _, p := range paths {
		err := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			prod, err := Parse(ctx, path, ParseOptions{MaxBytes: 64 << 20})
			if err != nil {
				return err
			}
			g.mu.Lock()
			g.released = append(g.released, prod)
			g.mu.Unlock()
			return nil
		})
		if err != nil {
			return fmt.Errorf("released %s: %w", p, err)
		}
	}
	return nil
}

// Input is the document the policy decides on (docs/policy-input.md).
type Input struct {
	Product  ProductInfo    `json:"product"`
	Source   SourceInfo     `json:"source"`
	Findings []Finding      `json:"findings"`
	Released int            `json:"released"`
	Scenario map[string]any `json:"scenario,omitempty"`
}

// ProductInfo describes the product in the policy input.
type ProductInfo struct {
	Path   string `json:"path"`
	Kind   Kind   `json:"kind"`
	Format string `json:"format"`
	Size   int64  `json:"size"`
	Rows   int64  `json:"rows"`
	Tables int    `json:"tables"`
	SHA256 string `json:"sha256"`
}

// SourceInfo describes the source in the policy input.
type SourceInfo struct {
	Rows        int      `json:"rows"`
	Identifiers []string `json:"identifiers"`
}

// Result is the gate's verdict on one product.
type Result struct {
	Product  ProductInfo     `json:"product"`
	Decision policy.Decision `json:"decision"`
	Findings []Finding       `json:"findings"`
	Timing   Timing          `json:"timing"`
	Input    *Input          `json:"-"`
}

// Timing is where a check spent its time, in milliseconds.
type Timing struct {
	ParseMS  float64 `json:"parse_ms"`
	DetectMS float64 `json:"detect_ms"`
	PolicyMS float64 `json:"policy_ms"`
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

// Check parses a product, runs every detector and asks the policy.
func (g *Gate) Check(ctx context.Context, path string) (*Result, error) {
	th, err := g.thresholds(ctx)
	if err != nil {
		return nil, err
	}
	var timing Timing
	start := time.Now()
	prod, err := Parse(ctx, path, ParseOptions{MaxBytes: th.MaxFileBytes, MaxRows: int(th.MaxRows)})
	if err != nil {
		return nil, err
	}
	timing.ParseMS = msSince(start)
	start = time.Now()
	g.mu.Lock()
	released := g.released[:len(g.released):len(g.released)] // later additions are not this check's
	g.mu.Unlock()
	findings := g.detect(ctx, prod, th, released)
	timing.DetectMS = msSince(start)
	in := &Input{
		Product:  ProductInfo{Path: path, Kind: prod.Kind, Format: prod.Format, Size: prod.Size, Rows: prod.Rows(), Tables: len(prod.Tables), SHA256: prod.SHA256},
		Source:   SourceInfo{Rows: g.ix.rows, Identifiers: g.ix.identifierColumns()},
		Findings: findings, Released: len(released),
	}
	if g.scenario != nil {
		in.Scenario = map[string]any{"thresholds": g.scenario}
	}
	start = time.Now()
	doc, err := toDocument(in)
	if err != nil {
		return nil, err
	}
	d, err := g.policy.Decide(ctx, doc)
	if err != nil {
		return nil, err
	}
	timing.PolicyMS = msSince(start)
	return &Result{Product: in.Product, Decision: *d, Findings: findings, Timing: timing, Input: in}, nil
}

func (g *Gate) detect(ctx context.Context, p *Product, th Thresholds, released []*Product) []Finding {
	var out []Finding
	if p.ParseError != "" {
		return []Finding{{Detector: DetParseError, Severity: High, Kind: p.Format, Message: fmt.Sprintf("the product could not be read as %s: %s", p.Format, p.ParseError)}}
	}
	if p.Size > th.MaxFileBytes {
		out = append(out, Finding{Detector: DetFileSize, Severity: High, Count: 1, Value: float64(p.Size), Threshold: float64(th.MaxFileBytes),
			Message: fmt.Sprintf("%d bytes, above the %d-byte limit", p.Size, th.MaxFileBytes)})
	}
	switch p.Kind {
	case KindTable, KindText, KindDocument:
	default:
		sev := High
		if p.Kind == KindImage || p.Kind == KindModel {
			sev = Medium
		}
		return append(out, Finding{Detector: DetFileType, Severity: sev, Kind: string(p.Kind), Count: 1,
			Message: fmt.Sprintf("a %s file (%s): its content cannot be checked automatically", p.Kind, p.Format)})
	}
	if rows := p.Rows(); rows > th.MaxRows {
		out = append(out, Finding{Detector: DetRowLimit, Severity: High, Count: rows, Value: float64(rows), Threshold: float64(th.MaxRows),
			Message: fmt.Sprintf("%d rows, above the %d-row limit", rows, th.MaxRows)})
	}
	sc := newScanner(g.ix)
	for _, l := range p.Text {
		sc.text("", "", l.Where, l.Text)
	}
	for _, t := range p.Tables {
		for _, c := range t.Columns {
			for r, v := range c.Values {
				sc.cell(t.Name, c.Name, r, v)
			}
		}
	}
	out = append(out, sc.results()...)
	for _, t := range p.Tables {
		if ctx.Err() != nil {
			break
		}
		out = append(out, analyzeTable(g.ix, th, t)...)
		out = append(out, differencing(g.ix, th, t, released)...)
	}
	sc.scrub(out)
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i].Severity) > rank(out[j].Severity) })
	if out == nil {
		out = []Finding{}
	}
	return out
}

func rank(s Severity) int {
	switch s {
	case High:
		return 2
	case Medium:
		return 1
	}
	return 0
}

func (ix *Index) identifierColumns() []string {
	var out []string
	for _, c := range ix.cols {
		if c.isID {
			out = append(out, c.name)
		}
	}
	if out == nil {
		out = []string{}
	}
	return out
}

// toDocument turns the input into plain JSON values for OPA, through its
// JSON encoding, so the policy sees exactly the documented fields.
func toDocument(in *Input) (map[string]any, error) {
	data, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	err = dec.Decode(&doc) // before doc is read: Go does not order a return's operands
	return doc, err
}
