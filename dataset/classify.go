package dataset

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicehq/sluice/dataset/pii"
)

// Thresholds of the classifier.
const (
	// piiMinRate is the share of non-null values that must be valid
	// identifiers of one kind for the column to be an identifier.
	piiMinRate = 0.6
	// keyMinRatio is the distinct/non-null ratio above which a text column
	// is taken as a record key.
	keyMinRatio = 0.95
	keyMinRows  = 50
)

// piiGrade is the default grade of identifier columns by kind.
var piiGrade = map[pii.Kind]int{
	pii.ResidentID: 4, pii.BankCard: 4, pii.Passport: 4,
	pii.Mobile: 3, pii.Email: 3, pii.PersonName: 3,
	pii.CreditCode: 2, // enterprise credit codes are public registry data
}

// Keywords of column names. Latin keywords match a whole word of the name or
// its prefix ("diagnos" matches "diagnosis"); Chinese keywords match anywhere.
var (
	healthWords    = []string{"diagnos", "disease", "illness", "health", "medical", "icd", "symptom", "诊断", "疾病", "病", "医疗", "健康"}
	sensitiveWords = []string{"income", "salary", "wage", "insurance", "tax", "revenue", "profit", "capital", "debt", "loan", "balance", "asset", "religio", "criminal", "收入", "工资", "薪", "保险", "社保", "税", "营收", "利润", "资本", "资产", "负债", "宗教", "犯罪"}
	quasiWords     = []string{"birth", "dob", "age", "gender", "sex", "district", "region", "city", "county", "province", "zip", "postcode", "postal", "address", "addr", "educat", "degree", "occupation", "job", "profession", "industry", "marital", "ethnic", "nation", "race", "employee", "staff", "出生", "年龄", "性别", "地区", "区县", "城市", "省", "地址", "邮编", "学历", "教育", "职业", "行业", "婚姻", "民族", "籍贯", "员工"}
)

// Classify suggests a classification from a profile: identifiers by PII
// detection or uniqueness; sensitive and quasi-identifying columns by their
// names, types and values; everything else other.
func Classify(p *Profile) *Suggestion {
	s := &Suggestion{Source: p.File, Rows: p.Rows, Classes: &Classes{}, Reasons: map[string]string{}}
	for i := range p.Columns {
		cc, why := classifyColumn(&p.Columns[i], p.Rows)
		s.Classes.Set(p.Columns[i].Name, cc)
		s.Reasons[p.Columns[i].Name] = why
	}
	return s
}

func classifyColumn(c *ColumnProfile, rows int64) (ColumnClass, string) {
	nonNull := c.NonNull(rows)
	if top, ok := c.TopPII(); ok && top.Rate >= piiMinRate && nonNull > 0 {
		// A handful of names among a few categories is not a name column.
		if top.Kind != pii.PersonName || float64(c.Distinct) >= 0.1*float64(nonNull) {
			return ColumnClass{Class: Identifier, PII: top.Kind, Grade: piiGrade[top.Kind]},
				fmt.Sprintf("%.1f%% of %d values are valid %s", 100*top.Rate, nonNull, kindLabel(top.Kind))
		}
	}
	tokens := NameTokens(c.Name)
	switch {
	case HasKeyword(c.Name, tokens, healthWords):
		return ColumnClass{Class: Sensitive, Grade: 4}, "name suggests health data"
	case HasKeyword(c.Name, tokens, sensitiveWords):
		return ColumnClass{Class: Sensitive, Grade: 3}, "name suggests financial or otherwise sensitive data"
	}
	if isText(c.kind) && nonNull > 0 && float64(c.OrgNames) >= piiMinRate*float64(nonNull) {
		return ColumnClass{Class: Identifier, Grade: 2}, "values are organisation names (有限公司, 合作社, …)"
	}
	if isText(c.kind) && nonNull >= keyMinRows && float64(c.Distinct) >= keyMinRatio*float64(nonNull) {
		return ColumnClass{Class: Identifier, Grade: 3},
			fmt.Sprintf("about %d distinct values in %d rows: unique per record, a key", c.Distinct, nonNull)
	}
	switch {
	case nonNull > 0 && float64(c.RegionCodes) >= piiMinRate*float64(nonNull):
		return ColumnClass{Class: QuasiIdentifier, Grade: 2}, "values are administrative region codes"
	case c.kind == arrow.DATE32 || c.kind == arrow.DATE64 || c.kind == arrow.TIMESTAMP:
		return ColumnClass{Class: QuasiIdentifier, Grade: 2}, "dates identify in combination (birth, admission, …)"
	case HasKeyword(c.Name, tokens, quasiWords):
		return ColumnClass{Class: QuasiIdentifier, Grade: 2}, "name suggests a demographic or location attribute"
	}
	return ColumnClass{Class: Other, Grade: 1}, "no identifying or sensitive signal"
}

func kindLabel(k pii.Kind) string {
	switch k {
	case pii.ResidentID:
		return "resident IDs (check character verified)"
	case pii.CreditCode:
		return "unified social credit codes (check character verified)"
	case pii.Mobile:
		return "mainland mobile numbers"
	case pii.BankCard:
		return "bank card numbers (Luhn verified)"
	case pii.Email:
		return "e-mail addresses"
	case pii.PersonName:
		return "Chinese personal names"
	case pii.Passport:
		return "passport numbers"
	}
	return string(k)
}

func isText(t arrow.Type) bool { return t == arrow.STRING || t == arrow.LARGE_STRING }

// NameTokens splits a column name into lower-case words at separators and
// camelCase boundaries.
func NameTokens(name string) []string {
	var toks []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			toks = append(toks, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	var prev rune
	for _, r := range name {
		switch {
		case !unicode.IsLetter(r) && !unicode.IsDigit(r):
			flush()
		case unicode.IsUpper(r) && unicode.IsLower(prev):
			flush()
			cur = append(cur, r)
		default:
			cur = append(cur, r)
		}
		prev = r
	}
	flush()
	return toks
}

// HasKeyword reports whether a column name contains one of words: a Latin
// word as the prefix of one of its tokens, a Chinese word anywhere.
func HasKeyword(name string, tokens []string, words []string) bool {
	for _, w := range words {
		if w[0] >= 0x80 { // Chinese keyword
			if strings.Contains(name, w) {
				return true
			}
			continue
		}
		for _, t := range tokens {
			if strings.HasPrefix(t, w) {
				return true
			}
		}
	}
	return false
}
