package egress

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sluicehq/sluice/dataset/mask"
	"github.com/sluicehq/sluice/dataset/pii"
)

// scanner looks for identifiers in cells and text: raw values of the
// source's identifier columns, their reversible encodings, structurally
// valid identifiers, and masking pseudonyms. Findings are aggregated per
// detector, column, source column and kind.
type scanner struct {
	ix       *Index
	findings map[string]*Finding
	order    []string
	// clean remembers cell values of the current column that held nothing
	// (columns repeat their values), up to maxCached of them.
	clean    map[string]struct{}
	cleanCol string
	reported int64 // everything reported so far
	// secrets are the tokens that matched (raw values, encodings, PII):
	// product column names and JSON keys can be such tokens, so findings
	// are scrubbed of them before they leave the gate.
	secrets map[string]struct{}
}

const maxSecrets = 100000

func (s *scanner) secret(tok string) {
	if s.secrets == nil {
		s.secrets = map[string]struct{}{}
	}
	if len(s.secrets) < maxSecrets {
		s.secrets[tok] = struct{}{}
	}
}

// scrub replaces every matched token in the findings' text fields.
func (s *scanner) scrub(fs []Finding) {
	if len(s.secrets) == 0 {
		return
	}
	for i := range fs {
		f := &fs[i]
		for _, p := range []*string{&f.Table, &f.Column, &f.Location, &f.SourceColumn, &f.Message} {
			if *p == "" {
				continue
			}
			for tok := range s.secrets {
				if strings.Contains(*p, tok) {
					*p = strings.ReplaceAll(*p, tok, "[redacted]")
				}
			}
		}
	}
}

func newScanner(ix *Index) *scanner { return &scanner{ix: ix, findings: map[string]*Finding{}} }

func (s *scanner) add(det string, sev Severity, table, column, where, srcCol, kind, msg string) {
	key := strings.Join([]string{det, table, column, srcCol, kind}, "\x00")
	f := s.findings[key]
	if f == nil {
		f = &Finding{Detector: det, Severity: sev, Table: table, Column: column, Location: where, SourceColumn: srcCol, Kind: kind, Message: msg}
		s.findings[key] = f
		s.order = append(s.order, key)
	}
	f.Count++
	s.reported++
}

func (s *scanner) results() []Finding {
	out := make([]Finding, 0, len(s.order))
	for _, k := range s.order {
		f := *s.findings[k]
		f.Message = fmt.Sprintf("%s (%d found)", f.Message, f.Count)
		out = append(out, f)
	}
	return out
}

// cell checks a table cell as a whole and, when it has several words,
// each word.
func (s *scanner) cell(table, column string, row int, v string) {
	if v == "" {
		return
	}
	if key := table + "\x00" + column; key != s.cleanCol {
		s.cleanCol, s.clean = key, map[string]struct{}{}
	}
	if _, ok := s.clean[v]; ok {
		return
	}
	where := fmt.Sprintf("row %d", row+1)
	before := s.reported
	if !s.token(table, column, where, v) && strings.IndexFunc(v, splitter) >= 0 {
		s.text(table, column, where, v)
	}
	if s.reported == before && len(s.clean) < maxCached {
		s.clean[v] = struct{}{}
	}
}

// text checks every token of free text.
func (s *scanner) text(table, column, where, t string) {
	tokenize(t, func(tok string, han bool) {
		if han {
			s.han(table, column, where, tok)
			return
		}
		if !s.token(table, column, where, tok) {
			// key=value and a:b pairs: look at each side too ('=' is kept
			// in tokens for base64 padding).
			if i := strings.IndexAny(strings.TrimRight(tok, "="), "=:"); i >= 0 {
				for _, part := range strings.FieldsFunc(tok, func(r rune) bool { return r == '=' || r == ':' }) {
					s.token(table, column, where, part)
				}
			}
		}
	})
}

func splitter(r rune) bool {
	return !(r < utf8.RuneSelf && isTokenByte(byte(r)) || isFullWidthAlnum(r) || unicode.Is(unicode.Han, r))
}

// isFullWidthAlnum: full-width digits and Latin letters, which identifiers
// typed in Chinese text often use.
func isFullWidthAlnum(r rune) bool {
	return r >= 0xFF10 && r <= 0xFF19 || r >= 0xFF21 && r <= 0xFF3A || r >= 0xFF41 && r <= 0xFF5A
}

func isTokenByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte("+/=_-.@:", c) >= 0
}

// tokenize calls f with each run of identifier-like characters (ASCII
// letters, digits, and + / = _ - . @, full-width forms included) and each
// run of Han characters.
func tokenize(t string, f func(tok string, han bool)) {
	start, han := -1, false
	emit := func(end int) {
		if start >= 0 {
			tok := t[start:end]
			if !han {
				tok = strings.Trim(tok, ".-_@/+=")
			}
			if tok != "" {
				f(tok, han)
			}
		}
		start = -1
	}
	for i, r := range t {
		isHan := unicode.Is(unicode.Han, r)
		isTok := r < utf8.RuneSelf && isTokenByte(byte(r)) || isFullWidthAlnum(r)
		switch {
		case isHan && (start < 0 || !han):
			emit(i)
			start, han = i, true
		case isTok && (start < 0 || han):
			emit(i)
			start, han = i, false
		case !isHan && !isTok:
			emit(i)
		}
	}
	emit(len(t))
}

// token checks one token; it reports whether anything was found.
func (s *scanner) token(table, column, where, tok string) bool {
	ix := s.ix
	if ci, ok := ix.identifier(tok); ok {
		c := ix.cols[ci]
		s.secret(tok)
		s.add(DetRawValue, High, table, column, where, c.name, string(c.kind), fmt.Sprintf("raw values of identifier column %s", c.name))
		return true
	}
	if isPseudonym(tok) {
		s.secret(tok)
		s.add(DetPseudonym, High, table, column, where, "", "pseudonym", "masking pseudonyms: they link records to the masked data")
		return true
	}
	if len(tok) < 8 {
		return false
	}
	if s.encoded(table, column, where, tok) {
		s.secret(tok)
		return true
	}
	if k := strongPII(tok); k != "" {
		s.secret(tok)
		s.add(DetPIIPattern, High, table, column, where, "", string(k), fmt.Sprintf("structurally valid %s values", k))
		return true
	}
	return false
}

func isPseudonym(tok string) bool {
	p := mask.DefaultPseudonymPrefix
	if !strings.HasPrefix(tok, p) || len(tok) != len(p)+24 {
		return false
	}
	_, err := hex.DecodeString(tok[len(p):])
	return err == nil
}

// strongPII detects the identifier kinds whose structure is specific enough
// to trust in free text (names are found by source lookup instead).
func strongPII(tok string) pii.Kind {
	for _, k := range []pii.Kind{pii.ResidentID, pii.CreditCode, pii.Mobile, pii.BankCard, pii.Email, pii.Passport} {
		if pii.Match(k, tok) {
			return k
		}
	}
	return ""
}

// encoded looks for reversible encodings of raw identifiers: unsalted
// digests in hex or base64, base64 or hex of the value, the value reversed.
func (s *scanner) encoded(table, column, where, tok string) bool {
	ix := s.ix
	report := func(ci int, how string) bool {
		c := ix.cols[ci]
		s.add(DetEncodedValue, High, table, column, where, c.name, how, fmt.Sprintf("%s of identifier column %s: reversible to the raw value", how, c.name))
		return true
	}
	var raw []byte
	switch len(tok) {
	case 32, 40, 64:
		if b, err := hex.DecodeString(tok); err == nil {
			raw = b
			if d, ok := ix.digest(b); ok {
				return report(int(d.col), "unsalted "+digestAlgos[d.algo]+" (hex)")
			}
		}
	}
	if b := decodeBase64(tok); b != nil {
		if len(b) == 16 || len(b) == 20 || len(b) == 32 {
			if d, ok := ix.digest(b); ok {
				return report(int(d.col), "unsalted "+digestAlgos[d.algo]+" (base64)")
			}
		}
		if utf8.Valid(b) {
			if ci, ok := ix.identifier(string(b)); ok {
				return report(ci, "base64")
			}
			if k := strongPII(string(b)); k != "" {
				s.add(DetPIIPattern, High, table, column, where, "", string(k), fmt.Sprintf("base64-encoded %s values", k))
				return true
			}
		}
	}
	if raw == nil && len(tok)%2 == 0 {
		if b, err := hex.DecodeString(tok); err == nil && utf8.Valid(b) {
			if ci, ok := ix.identifier(string(b)); ok {
				return report(ci, "hex")
			}
		}
	}
	if ci, ok := ix.identifier(reverse(tok)); ok {
		return report(ci, "reversed")
	}
	return false
}

func decodeBase64(tok string) []byte {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(tok); err == nil {
			return b
		}
	}
	return nil
}

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

// han checks a run of Han characters and the names inside it.
func (s *scanner) han(table, column, where, run string) {
	rs := []rune(run)
	if len(rs) < 2 {
		return
	}
	if s.token(table, column, where, run) {
		return
	}
	if len(rs) > 64 {
		rs = rs[:64]
	}
	for n := 2; n <= 4; n++ {
		for i := 0; i+n <= len(rs); i++ {
			sub := string(rs[i : i+n])
			if ci, ok := s.ix.identifier(sub); ok && pii.IsPersonName(sub) {
				c := s.ix.cols[ci]
				s.secret(sub)
				s.add(DetRawValue, High, table, column, where, c.name, string(c.kind), fmt.Sprintf("raw values of identifier column %s inside text", c.name))
			}
		}
	}
}
