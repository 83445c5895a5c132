package pii

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Kind names a kind of personal or enterprise identifier.
type Kind string

// The kinds of identifier the detectors recognise.
const (
	ResidentID Kind = "cn_resident_id" // 居民身份证号码, 18 or legacy 15 characters
	CreditCode Kind = "cn_credit_code" // 统一社会信用代码
	Mobile     Kind = "cn_mobile"      // mainland mobile number
	BankCard   Kind = "bank_card"      // payment card number (Luhn)
	Email      Kind = "email"
	PersonName Kind = "person_name" // Chinese personal name
	Passport   Kind = "passport"    // PRC passport number
)

// Kinds lists every kind, most specific first: Detect returns the first that
// matches.
var Kinds = []Kind{ResidentID, CreditCode, Mobile, BankCard, Email, Passport, PersonName}

// Match reports whether s is a structurally valid identifier of kind k.
// Separators (spaces, '-') and full-width characters are normalised first.
func Match(k Kind, s string) bool {
	switch k {
	case PersonName:
		return IsPersonName(strings.TrimSpace(s))
	case Email:
		return IsEmail(strings.TrimSpace(s))
	}
	n := Normalize(s)
	switch k {
	case ResidentID:
		return IsResidentID(n)
	case CreditCode:
		return IsCreditCode(n)
	case Mobile:
		return IsMobile(n)
	case BankCard:
		return IsBankCard(n)
	case Passport:
		return IsPassport(n)
	}
	return false
}

// Detect returns the most specific kind s matches, or "" for none.
func Detect(s string) Kind {
	for _, k := range Kinds {
		if Match(k, s) {
			return k
		}
	}
	return ""
}

// Normalize prepares a value for identifier comparison: full-width ASCII is
// folded to ASCII, letters are upper-cased, and white space and the
// separators '-', '.', '_' and '/' are removed.
func Normalize(s string) string {
	plain := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || c == ' ' || c == '-' || c == '.' || c == '_' || c == '/' || c == '\t' || (c >= 'a' && c <= 'z') {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if r >= 0xFF01 && r <= 0xFF5E { // full-width ASCII block
			r -= 0xFEE0
		}
		switch {
		case r == ' ' || r == '-' || r == '.' || r == '_' || r == '/' || r == '\t' || r == '\u3000' || r == '\u00a0':
			continue
		case r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

// provinces are the first two digits of valid administrative division codes
// (GB/T 2260), including Taiwan, Hong Kong and Macao.
var provinces = map[string]bool{
	"11": true, "12": true, "13": true, "14": true, "15": true,
	"21": true, "22": true, "23": true,
	"31": true, "32": true, "33": true, "34": true, "35": true, "36": true, "37": true,
	"41": true, "42": true, "43": true, "44": true, "45": true, "46": true,
	"50": true, "51": true, "52": true, "53": true, "54": true,
	"61": true, "62": true, "63": true, "64": true, "65": true,
	"71": true, "81": true, "82": true,
}

// IsRegionCode reports whether s is a plausible 6-digit administrative
// division code.
func IsRegionCode(s string) bool {
	return len(s) == 6 && allDigits(s) && provinces[s[:2]]
}

var idWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// ResidentIDCheck returns the MOD 11-2 check character (GB 11643) for the
// first 17 digits of a resident ID.
func ResidentIDCheck(first17 string) byte {
	sum := 0
	for i := 0; i < 17; i++ {
		sum += int(first17[i]-'0') * idWeights[i]
	}
	return "10X98765432"[sum%11]
}

// IsResidentID validates a normalised 18-character resident ID (check
// character, birth date, region) or a legacy 15-digit one (birth date,
// region).
func IsResidentID(s string) bool {
	switch len(s) {
	case 18:
		if !allDigits(s[:17]) || !provinces[s[:2]] {
			return false
		}
		if !validDate(s[6:10], s[10:12], s[12:14]) {
			return false
		}
		return s[17] == ResidentIDCheck(s)
	case 15:
		return allDigits(s) && provinces[s[:2]] && validDate("19"+s[6:8], s[8:10], s[10:12])
	}
	return false
}

func validDate(ys, ms, ds string) bool {
	y, m, d := atoi(ys), atoi(ms), atoi(ds)
	if y < 1900 || y > time.Now().Year() || m < 1 || m > 12 || d < 1 {
		return false
	}
	return d <= time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return -1
		}
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// creditAlphabet is the GB 32100 code alphabet (no I, O, S, V, Z).
const creditAlphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"

var creditWeights = [17]int{1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28}

// CreditCodeCheck returns the check character of a unified social credit
// code from its first 17 characters, or 0 if they are outside the alphabet.
func CreditCodeCheck(first17 string) byte {
	sum := 0
	for i := 0; i < 17; i++ {
		v := strings.IndexByte(creditAlphabet, first17[i])
		if v < 0 {
			return 0
		}
		sum += v * creditWeights[i]
	}
	return creditAlphabet[(31-sum%31)%31]
}

// IsCreditCode validates a normalised unified social credit code: 18
// characters of the GB 32100 alphabet, a registration authority and type,
// a 6-digit region code, and the check character.
func IsCreditCode(s string) bool {
	if len(s) != 18 {
		return false
	}
	if !strings.ContainsRune("123456789ANY", rune(s[0])) || !strings.ContainsRune("123459", rune(s[1])) {
		return false
	}
	if !IsRegionCode(s[2:8]) {
		return false
	}
	c := CreditCodeCheck(s)
	return c != 0 && s[17] == c
}

// IsMobile validates a mainland mobile number: 11 digits starting 13–19,
// optionally prefixed by +86, 86 or 0086.
func IsMobile(s string) bool {
	s = strings.TrimPrefix(s, "+")
	switch {
	case len(s) == 13 && strings.HasPrefix(s, "86"):
		s = s[2:]
	case len(s) == 15 && strings.HasPrefix(s, "0086"):
		s = s[4:]
	}
	return len(s) == 11 && allDigits(s) && s[0] == '1' && s[1] >= '3'
}

// LuhnValid reports whether a digit string passes the Luhn check.
func LuhnValid(s string) bool {
	if !allDigits(s) {
		return false
	}
	sum := 0
	double := false
	for i := len(s) - 1; i >= 0; i-- {
		d := int(s[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// LuhnCheckDigit returns the digit that makes payload+digit Luhn-valid.
func LuhnCheckDigit(payload string) byte {
	for d := byte('0'); d <= '9'; d++ {
		if LuhnValid(payload + string(d)) {
			return d
		}
	}
	return '0'
}

// IsBankCard validates a payment card number: 13–19 digits, a major
// industry identifier of a bank or payment network (3–6), and the Luhn check.
func IsBankCard(s string) bool {
	return len(s) >= 13 && len(s) <= 19 && s[0] >= '3' && s[0] <= '6' && LuhnValid(s)
}

// IsEmail validates the usual shape of an address: a local part, one '@',
// and a dotted domain whose last label is at least two letters.
func IsEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at != strings.LastIndexByte(s, '@') || len(s) > 254 {
		return false
	}
	local, domain := s[:at], s[at+1:]
	for i := 0; i < len(local); i++ {
		c := local[i]
		if !(isAlnum(c) || strings.IndexByte(".!#$%&'*+/=?^_`{|}~-", c) >= 0) {
			return false
		}
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			if !isAlnum(l[i]) && l[i] != '-' {
				return false
			}
		}
	}
	tld := labels[len(labels)-1]
	if len(tld) < 2 {
		return false
	}
	for i := 0; i < len(tld); i++ {
		if !(tld[i] >= 'a' && tld[i] <= 'z' || tld[i] >= 'A' && tld[i] <= 'Z') {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// IsPassport validates a normalised PRC passport number: ordinary (E or G
// and 8 digits; E, a letter other than I or O, and 7 digits) or official
// (D, P or S, optionally E, and 7 digits).
func IsPassport(s string) bool {
	switch {
	case len(s) == 9 && (s[0] == 'E' || s[0] == 'G') && allDigits(s[1:]):
		return true
	case len(s) == 9 && s[0] == 'E' && s[1] >= 'A' && s[1] <= 'Z' && s[1] != 'I' && s[1] != 'O' && allDigits(s[2:]):
		return true
	case len(s) == 8 && strings.IndexByte("DPS", s[0]) >= 0 && allDigits(s[1:]):
		return true
	case len(s) == 9 && strings.IndexByte("DPS", s[0]) >= 0 && s[1] == 'E' && allDigits(s[2:]):
		return true
	}
	return false
}
