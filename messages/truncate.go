package messages

import "unicode/utf16"

// gsmBasic is the GSM 03.38 default alphabet; gsmExt the extension table
// characters, which take two septets.
const gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
const gsmExt = "^{}\\[~]|€\f"

var gsmSet, gsmExtSet = runeSet(gsmBasic), runeSet(gsmExt)

func runeSet(s string) map[rune]bool {
	m := map[rune]bool{}
	for _, r := range s {
		m[r] = true
	}
	return m
}

// Parts returns how many SMS parts text takes, and whether it is GSM-7.
func Parts(text string) (int, bool) {
	septets, gsm := 0, true
	for _, r := range text {
		switch {
		case gsmSet[r]:
			septets++
		case gsmExtSet[r]:
			septets += 2
		default:
			gsm = false
		}
	}
	if gsm {
		if septets <= 160 {
			return 1, true
		}
		return (septets + 152) / 153, true
	}
	units := len(utf16.Encode([]rune(text)))
	if units <= 70 {
		return 1, false
	}
	return (units + 66) / 67, false
}

// Truncate shortens text over limit SMS parts to the first limit whole parts
// of a multipart split, with its last 3 characters replaced by "...". It
// reports whether it cut anything.
func Truncate(text string, limit int) (string, bool) {
	parts, gsm := Parts(text)
	if limit <= 0 || parts <= limit {
		return text, false
	}
	rs := []rune(text)
	keep := 0
	if gsm {
		budget := limit * 153
		for keep < len(rs) {
			w := 1
			if gsmExtSet[rs[keep]] {
				w = 2
			}
			if budget-w < 0 {
				break
			}
			budget -= w
			keep++
		}
	} else {
		budget := limit * 67
		for keep < len(rs) {
			w := len(utf16.Encode([]rune{rs[keep]}))
			if budget-w < 0 {
				break
			}
			budget -= w
			keep++
		}
	}
	if keep < 3 {
		return "...", true
	}
	return string(rs[:keep-3]) + "...", true
}
