package pii

import "testing"

func TestMatch(t *testing.T) {
	tests := []struct {
		kind Kind
		in   string
		want bool
	}{
		// Resident IDs: the GB 11643 example, its variants and broken forms.
		{ResidentID, "11010519491231002X", true},
		{ResidentID, "11010519491231002x", true},   // lower-case check character
		{ResidentID, "110105 19491231 002X", true}, // separators
		{ResidentID, "１１０１０５１９４９１２３１００２Ｘ", true},   // full-width
		{ResidentID, "110105194912310021", false},  // wrong check character
		{ResidentID, "11010519491331002X", false},  // month 13
		{ResidentID, "11010519490230002X", false},  // 30 February
		{ResidentID, "99010519491231002X", false},  // no such province
		{ResidentID, "11010518991231002X", false},  // born before 1900
		{ResidentID, "1101051949123100", false},    // too short
		{ResidentID, "110105491231002", true},      // legacy 15 digits
		{ResidentID, "110105491331002", false},     // legacy, bad month
		{ResidentID, "", false},
		// Unified social credit codes.
		{CreditCode, "91350100M000100Y43", true},
		{CreditCode, "91350100m000100y43", true},
		{CreditCode, "91350100M000100Y44", false}, // wrong check character
		{CreditCode, "91350100M000100I43", false}, // I is outside the alphabet
		{CreditCode, "91990100M000100Y43", false}, // region 99 does not exist
		{CreditCode, "9135010M000100Y43", false},  // 17 characters
		// Mobiles.
		{Mobile, "13812345678", true},
		{Mobile, "138-1234-5678", true},
		{Mobile, "+8613812345678", true},
		{Mobile, "008613812345678", true},
		{Mobile, "12812345678", false}, // 12x is not a mobile prefix
		{Mobile, "1381234567", false},  // 10 digits
		{Mobile, "23812345678", false},
		// Bank cards.
		{BankCard, "6250941006528599", true}, // UnionPay test card
		{BankCard, "4111111111111111", true},
		{BankCard, "4111 1111 1111 1111", true},
		{BankCard, "4111111111111112", false}, // Luhn fails
		{BankCard, "411111111111", false},     // 12 digits
		{BankCard, "11111111111111111", false},
		{BankCard, "62500000000000000000", false}, // 20 digits
		// E-mail.
		{Email, "zhang.san@example.com.cn", true},
		{Email, "a+b@mail.example.org", true},
		{Email, "no-at-sign.example.com", false},
		{Email, "two@@example.com", false},
		{Email, "user@localhost", false},
		{Email, "user@example.c0m", false},
		{Email, "user@-example.com", false},
		// Names.
		{PersonName, "张伟", true},
		{PersonName, "欧阳娜娜", true},
		{PersonName, "曾英秀", true},
		{PersonName, "金水区", false},   // a district
		{PersonName, "高中", false},    // a school grade
		{PersonName, "医护", false},    // 医 is not a surname
		{PersonName, "张", false},     // too short
		{PersonName, "王ABC", false},  // not all Han
		{PersonName, "李某某某某", false}, // too long for a single surname
		// Passports.
		{Passport, "E12345678", true},
		{Passport, "EA1234567", true},
		{Passport, "G12345678", true},
		{Passport, "EI1234567", false},
		{Passport, "X12345678", false},
		{Passport, "E1234567", false},
	}
	for _, tc := range tests {
		t.Run(string(tc.kind)+"/"+tc.in, func(t *testing.T) {
			if got := Match(tc.kind, tc.in); got != tc.want {
				t.Errorf("Match(%s, %q) = %v, want %v", tc.kind, tc.in, got, tc.want)
			}
		})
	}
}

func TestDetectPrefersSpecificKinds(t *testing.T) {
	tests := map[string]Kind{
		"11010519491231002X": ResidentID,
		"91350100M000100Y43": CreditCode,
		"13812345678":        Mobile,
		"4111111111111111":   BankCard,
		"x@example.com":      Email,
		"张伟":                 PersonName,
		"E12345678":          Passport,
		"hello":              "",
		"12345":              "",
	}
	for in, want := range tests {
		if got := Detect(in); got != want {
			t.Errorf("Detect(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckCharacters(t *testing.T) {
	if got := ResidentIDCheck("11010519491231002"); got != 'X' {
		t.Errorf("ResidentIDCheck = %c, want X", got)
	}
	if got := CreditCodeCheck("91350100M000100Y4"); got != '3' {
		t.Errorf("CreditCodeCheck = %c, want 3", got)
	}
	if got := CreditCodeCheck("91350100M000100I4"); got != 0 {
		t.Errorf("CreditCodeCheck outside alphabet = %c, want 0", got)
	}
	if got := LuhnCheckDigit("411111111111111"); got != '1' {
		t.Errorf("LuhnCheckDigit = %c, want 1", got)
	}
}

func TestNormalize(t *testing.T) {
	tests := map[string]string{
		"abc":                "ABC",
		"138 1234-5678":      "13812345678",
		"１２３ａｂｃ":             "123ABC",
		"11010519491231002X": "11010519491231002X",
	}
	for in, want := range tests {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRegionCode(t *testing.T) {
	for in, want := range map[string]bool{"410105": true, "990105": false, "41010": false, "41010a": false} {
		if got := IsRegionCode(in); got != want {
			t.Errorf("IsRegionCode(%q) = %v, want %v", in, got, want)
		}
	}
}

func BenchmarkDetect(b *testing.B) {
	vals := []string{"11010519491231002X", "13812345678", "4111111111111111", "张伟", "hello world", "3840"}
	for i := 0; i < b.N; i++ {
		Detect(vals[i%len(vals)])
	}
}
