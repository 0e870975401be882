package jsv

import (
	"bytes"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// QuoteTo writes s quoted as JSON.stringify does (ES2019 well-formed JSON).
// Bytes that are not UTF-8 are written as U+FFFD, except the 3-byte
// encodings of surrogates (as a JavaScript string exported with a lone
// surrogate may hold), which are written as \udxxx escapes.
func QuoteTo(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch c {
			case '"':
				b.WriteString(`\"`)
			case '\\':
				b.WriteString(`\\`)
			case '\b':
				b.WriteString(`\b`)
			case '\f':
				b.WriteString(`\f`)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\t':
				b.WriteString(`\t`)
			default:
				if c < 0x20 {
					b.WriteString(`\u00`)
					b.WriteByte(hexDigits[c>>4])
					b.WriteByte(hexDigits[c&0xf])
				} else {
					b.WriteByte(c)
				}
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			if u, ok := surrogateAt(s, i); ok {
				b.WriteString(`\u`)
				for shift := 12; shift >= 0; shift -= 4 {
					b.WriteByte(hexDigits[(u>>uint(shift))&0xf])
				}
				i += 3
				continue
			}
			b.WriteString("\ufffd")
			i++
			continue
		}
		b.WriteString(s[i : i+size])
		i += size
	}
	b.WriteByte('"')
}

// Quote is s quoted as JSON.stringify quotes it.
func Quote(s string) string {
	var b bytes.Buffer
	QuoteTo(&b, s)
	return b.String()
}

// surrogateAt decodes the generalized UTF-8 (WTF-8) encoding of a surrogate
// code point (ED A0..BF 80..BF) at s[i].
func surrogateAt(s string, i int) (uint16, bool) {
	if i+2 >= len(s) || s[i] != 0xED || s[i+1] < 0xA0 || s[i+1] > 0xBF || s[i+2] < 0x80 || s[i+2] > 0xBF {
		return 0, false
	}
	return uint16(0xD000 | uint16(s[i+1]&0x3F)<<6 | uint16(s[i+2]&0x3F)), true
}
