package phone

import "testing"

func TestNormalize(t *testing.T) {
	tests := []struct {
		raw, code, mode string
		want            string
		valid           bool
	}{
		// Kenya (+254)
		{"+254712345678", "254", "full", "+254712345678", true},
		{"0712345678", "254", "full", "+254712345678", true},
		{"712345678", "254", "", "+254712345678", true},
		{" 0712 345 678 ", "254", "full", "+254712345678", true},
		{"+254 712 345 678", "", "full", "+254712345678", true},
		{"+254712345678", "+254", "full", "+254712345678", true},
		{"07123", "254", "full", "07123", false},
		{"0712345678", "", "full", "0712345678", false}, // no code: only '+' numbers
		{"0712345678", "abc", "full", "0712345678", false},
		{"0712345678", "999", "full", "0712345678", false}, // unknown calling code
		// short numbers stay national
		{"100", "254", "full", "100", true},
		{"112", "254", "full", "112", true},
		{"100", "", "full", "100", false},
		// Nepal (+977)
		{"+9779841234567", "977", "full", "+9779841234567", true},
		{"9841234567", "977", "full", "+9779841234567", true},
		{"100", "977", "full", "100", true},
		{"98412345", "977", "full", "98412345", false},
		// US (+1)
		{"+16502530000", "1", "full", "+16502530000", true},
		{"(650) 253-0000", "1", "full", "+16502530000", true},
		{"6502530000", "254", "full", "6502530000", false},
		{"+16502530000", "254", "full", "+16502530000", true}, // '+' ignores the code
		{"911", "1", "full", "911", true},
		// invalid international numbers
		{"+123456", "", "full", "+123456", false},
		{"+123456", "254", "partial", "+123456", false},
		// partial: possible length only
		{"7123456", "254", "partial", "+2547123456", true},
		{"712345", "254", "partial", "712345", false},
		{"+254712345678", "254", "PARTIAL", "+254712345678", true},
		// none: anything but letters / empty
		{"12", "254", "none", "12", true},
		{"0712345678", "254", "none", "+254712345678", true},
		{"+123456", "", "none", "+123456", true},
		{"abc", "254", "none", "abc", false},
		{"", "254", "none", "", false},
		// letters never valid
		{"+25471234567x", "254", "full", "+25471234567x", false},
		{"1-800-FLOWERS", "1", "full", "1-800-FLOWERS", false},
		{"07I2345678", "254", "partial", "07I2345678", false},
		{"", "254", "full", "", false},
		{"   ", "254", "full", "   ", false},
	}
	for _, tc := range tests {
		got, valid := Normalize(tc.raw, tc.code, tc.mode)
		if got != tc.want || valid != tc.valid {
			t.Errorf("Normalize(%q, %q, %q) = %q, %v; want %q, %v", tc.raw, tc.code, tc.mode, got, valid, tc.want, tc.valid)
		}
		if v := IsValid(tc.raw, tc.code, tc.mode); v != tc.valid {
			t.Errorf("IsValid(%q, %q, %q) = %v; want %v", tc.raw, tc.code, tc.mode, v, tc.valid)
		}
	}
}

func TestIsValidInternational(t *testing.T) {
	tests := []struct {
		raw  string
		want bool
	}{
		{"+254712345678", true},
		{" +254712345678 ", true},
		{"+9779841234567", true},
		{"+16502530000", true},
		{"+123456", false},
		{"+444999", false},
		{"0712345678", false},
		{"712345678", false},
		{"100", false},
		{"clinic", false},
		{"+2547123456x8", false},
		{"", false},
		{"+", false},
	}
	for _, tc := range tests {
		if got := IsValidInternational(tc.raw); got != tc.want {
			t.Errorf("IsValidInternational(%q) = %v; want %v", tc.raw, got, tc.want)
		}
	}
}

func TestSame(t *testing.T) {
	tests := []struct {
		a, b, code string
		want       bool
	}{
		{"+254712345678", "+254712345678", "254", true},
		{"+254712345678", "0712345678", "254", true},
		{"+254712345678", "0712345678", "", true}, // national-number match
		{"0712345678", "712345678", "254", true},
		{"0712345678", "712345678", "", false},
		{"+254 712 345 678", "+254712345678", "", true},
		{"+254712345678", "+254712345679", "254", false},
		{"+16502530000", "6502530000", "1", true},
		{"+16502530000", "+9779841234567", "1", false},
		{"+9779841234567", "9841234567", "977", true},
		{"MPESA", "MPESA", "254", true},
		{"MPESA", "+254712345678", "254", false},
		{"", "", "254", false},
		{"+254712345678", "", "254", false},
		{"12345", "12345", "", true},
	}
	for _, tc := range tests {
		if got := Same(tc.a, tc.b, tc.code); got != tc.want {
			t.Errorf("Same(%q, %q, %q) = %v; want %v", tc.a, tc.b, tc.code, got, tc.want)
		}
		if got := Same(tc.b, tc.a, tc.code); got != tc.want {
			t.Errorf("Same(%q, %q, %q) = %v; want %v (swapped)", tc.b, tc.a, tc.code, got, tc.want)
		}
	}
}

func TestRegion(t *testing.T) {
	for code, want := range map[string]string{"254": "KE", "+977": "NP", "1": "US", "": "", "x": "", "0": "", "999": ""} {
		if got := Region(code); got != want {
			t.Errorf("Region(%q) = %q; want %q", code, got, want)
		}
	}
}
