package dataset

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicehq/sluice/dataset/pii"
)

// Class is the role of a column in disclosure control.
type Class string

// Column classes.
const (
	Identifier      Class = "identifier"       // points at one person or company on its own
	QuasiIdentifier Class = "quasi_identifier" // identifies in combination (birth date, region, …)
	Sensitive       Class = "sensitive"        // the values to protect (income, diagnosis, …)
	Other           Class = "other"
)

func (c Class) valid() bool {
	switch c {
	case Identifier, QuasiIdentifier, Sensitive, Other:
		return true
	}
	return false
}

// ColumnClass is the classification of one column. Grade is the data grade
// 1 (lowest) to 4 (highest) in the sense of GB/T 43697-2024; 0 means unset.
type ColumnClass struct {
	Class Class    `yaml:"class" json:"class"`
	PII   pii.Kind `yaml:"pii,omitempty" json:"pii,omitempty"`
	Grade int      `yaml:"grade,omitempty" json:"grade,omitempty"`
}

// Classes is a dataset's column classification, in column order.
type Classes struct {
	Source  string // file it was read from, for errors
	Names   []string
	Columns map[string]ColumnClass
}

// Get returns a column's class; unlisted columns are Other.
func (c *Classes) Get(name string) ColumnClass {
	if cc, ok := c.Columns[name]; ok {
		return cc
	}
	return ColumnClass{Class: Other}
}

// Set adds or replaces a column's class, keeping first-seen order.
func (c *Classes) Set(name string, cc ColumnClass) {
	if c.Columns == nil {
		c.Columns = map[string]ColumnClass{}
	}
	if _, ok := c.Columns[name]; !ok {
		c.Names = append(c.Names, name)
	}
	c.Columns[name] = cc
}

// LoadClasses reads a classification file:
//
//	columns:
//	  person_id: {class: identifier, pii: cn_resident_id, grade: 4}
func LoadClasses(path string) (*Classes, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, openErr(path, err)
	}
	return ParseClasses(path, data)
}

// ParseClasses parses classification YAML; name is used in errors.
func ParseClasses(name string, data []byte) (*Classes, error) {
	var doc struct {
		Columns yaml.Node `yaml:"columns"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, inputErr(name, 0, "", -1, "classification is empty: expected a 'columns:' mapping")
		}
		return nil, inputErr(name, 0, "", -1, "invalid classification YAML: %v", err)
	}
	if doc.Columns.Kind != yaml.MappingNode {
		return nil, inputErr(name, int64(doc.Columns.Line), "", -1, "'columns' must be a mapping of column name to {class: …}")
	}
	c := &Classes{Source: name, Columns: map[string]ColumnClass{}}
	nodes := doc.Columns.Content
	for i := 0; i+1 < len(nodes); i += 2 {
		key, val := nodes[i], nodes[i+1]
		var cc ColumnClass
		if err := val.Decode(&cc); err != nil {
			return nil, inputErr(name, int64(val.Line), key.Value, -1, "invalid entry: %v", err)
		}
		if !cc.Class.valid() {
			return nil, inputErr(name, int64(val.Line), key.Value, -1, "class %q is not one of identifier, quasi_identifier, sensitive, other", cc.Class)
		}
		if cc.Grade < 0 || cc.Grade > 4 {
			return nil, inputErr(name, int64(val.Line), key.Value, -1, "grade %d is outside 1-4", cc.Grade)
		}
		if cc.PII != "" && !knownKind(cc.PII) {
			return nil, inputErr(name, int64(val.Line), key.Value, -1, "unknown pii kind %q", cc.PII)
		}
		if _, dup := c.Columns[key.Value]; dup {
			return nil, inputErr(name, int64(key.Line), key.Value, -1, "column listed twice")
		}
		c.Set(key.Value, cc)
	}
	return c, nil
}

func knownKind(k pii.Kind) bool {
	for _, kk := range pii.Kinds {
		if kk == k {
			return true
		}
	}
	return false
}

// Check verifies that every classified column exists in the dataset.
func (c *Classes) Check(dataset string, schema *arrow.Schema) error {
	for _, n := range c.Names {
		if len(schema.FieldIndices(n)) == 0 {
			return &InputError{File: c.Source, Column: n, Offset: -1, Msg: "classified column does not exist in " + dataset}
		}
	}
	return nil
}

// Suggestion is a proposed classification with the reason for each column.
type Suggestion struct {
	Source  string
	Rows    int64
	Classes *Classes
	Reasons map[string]string
}

// WriteYAML writes the suggestion in the classification file format, with a
// comment per column saying why.
func (s *Suggestion) WriteYAML(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# column classification: identifier | quasi_identifier | sensitive | other\n")
	fmt.Fprintf(&b, "# suggested by sluice from %s (%d rows); an administrator reviews and confirms it\n", s.Source, s.Rows)
	b.WriteString("columns:\n")
	for _, n := range s.Classes.Names {
		cc := s.Classes.Columns[n]
		key, err := yaml.Marshal(n)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "  %s: {class: %s", strings.TrimSpace(string(key)), cc.Class)
		if cc.PII != "" {
			fmt.Fprintf(&b, ", pii: %s", cc.PII)
		}
		if cc.Grade > 0 {
			fmt.Fprintf(&b, ", grade: %d", cc.Grade)
		}
		b.WriteString("}")
		if r := s.Reasons[n]; r != "" {
			b.WriteString("  # " + r)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
