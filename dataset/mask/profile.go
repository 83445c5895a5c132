package mask

import (
	"bytes"
	"embed"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/dataset/pii"
)

// Op is a masking operator.
type Op string

// The operators. See docs/masking.md for their parameters.
const (
	Keep       Op = "keep"
	Drop       Op = "drop"
	Redact     Op = "redact"     // replace by a constant
	Partial    Op = "partial"    // keep the first / last characters
	Pseudonym  Op = "pseudonym"  // keyed HMAC-SHA256, prefix-tagged
	Generalize Op = "generalize" // date → year/month, code → prefix, number → band
	Round      Op = "round"      // to a multiple of step
	TopCode    Op = "topcode"    // clamp to [bottom, top]
	Noise      Op = "noise"      // Laplace noise
	Suppress   Op = "suppress"   // categories with fewer than k rows → OTHER
)

// Rule is one operator with its parameters.
type Rule struct {
	Op Op `yaml:"op" json:"op"`
	// redact, suppress: the replacement ("***", "OTHER").
	Value string `yaml:"value,omitempty" json:"value,omitempty"`
	// partial: characters kept at each end, and the mask character ("*").
	KeepFirst int    `yaml:"keep_first,omitempty" json:"keep_first,omitempty"`
	KeepLast  int    `yaml:"keep_last,omitempty" json:"keep_last,omitempty"`
	Char      string `yaml:"char,omitempty" json:"char,omitempty"`
	// pseudonym: the tag that starts every pseudonym ("psn_").
	Prefix string `yaml:"prefix,omitempty" json:"prefix,omitempty"`
	// generalize: to "year" or "month" (dates), "prefix" with Length (codes),
	// "band" with Width (numbers); empty picks by type.
	To     string  `yaml:"to,omitempty" json:"to,omitempty"`
	Length int     `yaml:"length,omitempty" json:"length,omitempty"`
	Width  float64 `yaml:"width,omitempty" json:"width,omitempty"`
	// round: the step (10, 100, 0.01).
	Step float64 `yaml:"step,omitempty" json:"step,omitempty"`
	// topcode: the bounds.
	Top    *float64 `yaml:"top,omitempty" json:"top,omitempty"`
	Bottom *float64 `yaml:"bottom,omitempty" json:"bottom,omitempty"`
	// noise: privacy parameter and the L∞ sensitivity (one record's
	// largest plausible change); 0 derives it from the column's spread.
	Epsilon     float64 `yaml:"epsilon,omitempty" json:"epsilon,omitempty"`
	Sensitivity float64 `yaml:"sensitivity,omitempty" json:"sensitivity,omitempty"`
	// suppress: the minimum category size.
	K int `yaml:"k,omitempty" json:"k,omitempty"`
}

// ClassRule is the rule for a class: one rule, or one per type family.
type ClassRule struct {
	Rule   *Rule
	ByType map[string]Rule // keys: number, text, date, default
}

// UnmarshalYAML accepts either {op: …} or {number: {op: …}, text: …}.
func (c *ClassRule) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		for i := 0; i < len(n.Content); i += 2 {
			if n.Content[i].Value == "op" {
				var r Rule
				if err := n.Decode(&r); err != nil {
					return err
				}
				c.Rule = &r
				return nil
			}
		}
	}
	var m map[string]Rule
	if err := n.Decode(&m); err != nil {
		return err
	}
	for k := range m {
		switch k {
		case "number", "text", "date", "default":
		default:
			return fmt.Errorf("line %d: type family %q is not one of number, text, date, default", n.Line, k)
		}
	}
	c.ByType = m
	return nil
}

// Profile maps columns to rules.
type Profile struct {
	Name        string                      `yaml:"name"`
	Description string                      `yaml:"description,omitempty"`
	Sample      float64                     `yaml:"sample,omitempty"` // row fraction kept; 0 keeps all
	Classes     map[dataset.Class]ClassRule `yaml:"classes,omitempty"`
	PII         map[pii.Kind]Rule           `yaml:"pii,omitempty"`
	Columns     map[string]Rule             `yaml:"columns,omitempty"`
}

//go:embed profiles/*.yaml
var builtin embed.FS

// Builtin returns an embedded profile: "prod" or "dev".
func Builtin(name string) (*Profile, error) {
	data, err := builtin.ReadFile("profiles/" + name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("profile %q: %w (built-in profiles: prod, dev)", name, dataset.ErrNotFound)
	}
	return ParseProfile("builtin:"+name, data)
}

// LoadProfile reads a profile file, or a built-in one when path is
// "builtin:NAME" or just "prod" / "dev".
func LoadProfile(path string) (*Profile, error) {
	switch path {
	case "prod", "dev":
		return Builtin(path)
	}
	if len(path) > 8 && path[:8] == "builtin:" {
		return Builtin(path[8:])
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &dataset.InputError{File: path, Offset: -1, Msg: "cannot read profile: " + err.Error(), Err: dataset.ErrInvalidInput}
	}
	return ParseProfile(path, data)
}

// ParseProfile parses and validates profile YAML; name is used in errors.
func ParseProfile(name string, data []byte) (*Profile, error) {
	var p Profile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil && err != io.EOF {
		return nil, &dataset.InputError{File: name, Offset: -1, Msg: "invalid profile: " + err.Error()}
	}
	if p.Sample < 0 || p.Sample > 1 {
		return nil, &dataset.InputError{File: name, Offset: -1, Msg: fmt.Sprintf("sample %v is outside (0, 1]", p.Sample)}
	}
	check := func(where string, r Rule) error {
		if err := r.validate(); err != nil {
			return &dataset.InputError{File: name, Offset: -1, Msg: where + ": " + err.Error()}
		}
		return nil
	}
	for c, cr := range p.Classes {
		switch c {
		case dataset.Identifier, dataset.QuasiIdentifier, dataset.Sensitive, dataset.Other:
		default:
			return nil, &dataset.InputError{File: name, Offset: -1, Msg: fmt.Sprintf("classes: unknown class %q", c)}
		}
		if cr.Rule != nil {
			if err := check("classes."+string(c), *cr.Rule); err != nil {
				return nil, err
			}
		}
		for fam, r := range cr.ByType {
			if err := check("classes."+string(c)+"."+fam, r); err != nil {
				return nil, err
			}
		}
	}
	for k, r := range p.PII {
		if err := check("pii."+string(k), r); err != nil {
			return nil, err
		}
	}
	for col, r := range p.Columns {
		if err := check("columns."+col, r); err != nil {
			return nil, err
		}
	}
	return &p, nil
}

func (r Rule) validate() error {
	switch r.Op {
	case Keep, Drop, Redact, Pseudonym:
	case Partial:
		if r.KeepFirst < 0 || r.KeepLast < 0 {
			return fmt.Errorf("partial: keep_first and keep_last must not be negative")
		}
	case Generalize:
		switch r.To {
		case "", "year", "month":
		case "prefix":
			if r.Length <= 0 {
				return fmt.Errorf("generalize to prefix needs length > 0")
			}
		case "band":
			if r.Width <= 0 {
				return fmt.Errorf("generalize to band needs width > 0")
			}
		default:
			return fmt.Errorf("generalize: to %q is not one of year, month, prefix, band", r.To)
		}
	case Round:
		if r.Step <= 0 {
			return fmt.Errorf("round needs step > 0")
		}
	case TopCode:
		if r.Top == nil && r.Bottom == nil {
			return fmt.Errorf("topcode needs top, bottom or both")
		}
		if r.Top != nil && r.Bottom != nil && *r.Bottom > *r.Top {
			return fmt.Errorf("topcode: bottom is above top")
		}
	case Noise:
		if r.Epsilon <= 0 {
			return fmt.Errorf("noise needs epsilon > 0")
		}
		if r.Sensitivity < 0 {
			return fmt.Errorf("noise: sensitivity must not be negative")
		}
	case Suppress:
		if r.K < 0 {
			return fmt.Errorf("suppress: k must not be negative")
		}
	case "":
		return fmt.Errorf("op is missing")
	default:
		return fmt.Errorf("unknown op %q (keep, drop, redact, partial, pseudonym, generalize, round, topcode, noise, suppress)", r.Op)
	}
	return nil
}

// family names the type family of an Arrow type for class rules.
func family(t arrow.DataType) string {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64, arrow.DECIMAL128, arrow.DECIMAL256:
		return "number"
	case arrow.STRING, arrow.LARGE_STRING:
		return "text"
	case arrow.DATE32, arrow.DATE64, arrow.TIMESTAMP:
		return "date"
	}
	return "default"
}

// RuleFor picks the rule for a column: by name, then identifier kind, then
// class (and type family); keep when nothing matches.
func (p *Profile) RuleFor(name string, cc dataset.ColumnClass, t arrow.DataType) Rule {
	if r, ok := p.Columns[name]; ok {
		return r
	}
	if cc.PII != "" {
		if r, ok := p.PII[cc.PII]; ok {
			return r
		}
	}
	if cr, ok := p.Classes[cc.Class]; ok {
		if cr.Rule != nil {
			return *cr.Rule
		}
		if r, ok := cr.ByType[family(t)]; ok {
			return r
		}
		if r, ok := cr.ByType["default"]; ok {
			return r
		}
	}
	return Rule{Op: Keep}
}
