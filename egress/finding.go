package egress

import "fmt"

// Severity grades a finding for people; the policy decides.
type Severity string

// Severities.
const (
	Info   Severity = "info"
	Medium Severity = "medium"
	High   Severity = "high"
)

// Detectors (the "detector" field of a finding and the policy's reason codes).
const (
	DetRawValue     = "raw_value"          // a cell or token equals a raw identifier value
	DetEncodedValue = "encoded_value"      // a digest, base64, hex or reversal of one
	DetPIIPattern   = "pii_pattern"        // a structurally valid identifier, in the source or not
	DetPseudonym    = "linkable_pseudonym" // a masking pseudonym leaves: it links records
	DetGroupSize    = "group_size"         // groups of an aggregate recomputed from the source
	DetSmallCell    = "small_cell"         // a count under the threshold
	DetZeroCell     = "zero_cell"          // a zero count
	DetDominance    = "dominance"          // a sum dominated by one or two contributors
	DetExtreme      = "extreme"            // a min or max that is one person's value
	DetRowLevel     = "row_level"          // rows are records, not aggregates
	DetKAnonymity   = "k_anonymity"        // quasi-identifier classes of row-level output
	DetLDiversity   = "l_diversity"        // sensitive values within those classes
	DetAffine       = "affine_transform"   // a column that is a raw column in disguise
	DetDifferencing = "differencing"       // the difference with a released product is small
	DetFileType     = "file_type"          // not a table or text
	DetFileSize     = "file_size"
	DetRowLimit     = "row_limit"
	DetParseError   = "parse_error"
)

// Finding is one piece of evidence about a product. It never holds a value
// of the product or the source: only names, counts and thresholds.
type Finding struct {
	Detector     string   `json:"detector"`
	Severity     Severity `json:"severity"`
	Table        string   `json:"table,omitempty"`         // table within the product, if several
	Column       string   `json:"column,omitempty"`        // product column
	Location     string   `json:"location,omitempty"`      // first place, e.g. "line 3" or "row 12"
	SourceColumn string   `json:"source_column,omitempty"` // source column the evidence is grounded in
	Kind         string   `json:"kind,omitempty"`          // identifier kind, encoding or file kind
	Count        int64    `json:"count"`                   // cells, tokens, groups or rows concerned
	Total        int64    `json:"total,omitempty"`         // out of how many
	Value        float64  `json:"value"`                   // the metric: smallest group, k, l, difference, share, bytes
	Threshold    float64  `json:"threshold,omitempty"`     // the threshold the detector applied
	Message      string   `json:"message"`
}

func (f Finding) String() string {
	return fmt.Sprintf("[%s] %s: %s", f.Severity, f.Detector, f.Message)
}
