package templates

import (
	"fmt"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

type nodeKind uint8

const (
	nodeText     nodeKind = iota
	nodeValue             // {{x}}, {{{x}}}, {{&x}}: all print unescaped here
	nodeSection           // {{#x}}…{{/x}}
	nodeInverted          // {{^x}}…{{/x}}
)

// node is one element of a parsed template.
type node struct {
	kind     nodeKind
	text     string   // literal text, or the tag name
	path     []string // the name split on ".", when it is dotted (Mustache.js: a "." after the first character)
	children []*node

	// inner is the raw template text between a section's tags: Mustache.js
	// hands it to lambdas, and CHT's helpers render it again from scratch.
	inner     string
	innerOnce sync.Once
	innerTree []*node
	innerErr  error
}

// innerNodes parses the section's raw text once, on first use by a helper.
func (n *node) innerNodes() ([]*node, error) {
	n.innerOnce.Do(func() { n.innerTree, n.innerErr = parseCached(n.inner) })
	return n.innerTree, n.innerErr
}

// parseCache keeps parsed templates, as Mustache.js does: the same
// translations are rendered for every message.
var parseCache struct {
	sync.Mutex
	m map[string][]*node
}

const parseCacheMax = 2048

func parseCached(tmpl string) ([]*node, error) {
	parseCache.Lock()
	nodes, ok := parseCache.m[tmpl]
	parseCache.Unlock()
	if ok {
		return nodes, nil
	}
	nodes, err := parse(tmpl)
	if err != nil {
		return nil, err
	}
	parseCache.Lock()
	if parseCache.m == nil || len(parseCache.m) >= parseCacheMax {
		// Templates come from config, so this only trips on unusual input;
		// dropping everything keeps memory bounded without an LRU.
		parseCache.m = make(map[string][]*node)
	}
	parseCache.m[tmpl] = nodes
	parseCache.Unlock()
	return nodes, nil
}

// jsPos converts a byte offset to the UTF-16 offset Mustache.js reports.
func jsPos(s string, i int) int {
	n := 0
	for _, r := range s[:i] {
		n += len(utf16.Encode([]rune{r}))
	}
	return n
}

// rawToken is a token of the flat list Mustache.js's parseTemplate builds.
type rawToken struct {
	typ        byte // 't' text, 'n' name, '&', '#', '^', '/', '>', '!', '='
	val        string
	start, end int // byte offsets of the whole tag in the template
	deleted    bool
}

// scanUntil returns the offset where `\s*lit` first matches in s[pos:]
// (the start of the white space run before the first lit), or len(s).
func scanUntil(s string, pos int, lit string) int {
	i := strings.Index(s[pos:], lit)
	if i < 0 {
		return len(s)
	}
	end := pos + i
	for end > pos {
		r, w := utf8.DecodeLastRuneInString(s[pos:end])
		if !isJSSpace(r) {
			break
		}
		end -= w
	}
	return end
}

func skipSpace(s string, pos int) int {
	for pos < len(s) {
		r, w := decodeRune(s[pos:])
		if !isJSSpace(r) {
			break
		}
		pos += w
	}
	return pos
}

// scanLit consumes `\s*lit` at pos, if it is there.
func scanLit(s string, pos int, lit string) (int, bool) {
	p := skipSpace(s, pos)
	if strings.HasPrefix(s[p:], lit) {
		return p + len(lit), true
	}
	return pos, false
}

// parse is Mustache.js's parseTemplate (v4): same tag scanning, same
// standalone-line stripping, same errors (with the same messages and UTF-16
// positions), then squashTokens and nestTokens.
func parse(tmpl string) ([]*node, error) {
	var (
		toks     []rawToken
		sections []int // indexes of open section tokens
		spaces   []int // whitespace text tokens of the current line
		hasTag   bool
		nonSpace bool
		open     = "{{"
		close    = "}}"
	)
	stripSpace := func() {
		if hasTag && !nonSpace {
			for _, i := range spaces {
				toks[i].deleted = true
			}
		}
		spaces = spaces[:0]
		hasTag, nonSpace = false, false
	}

	pos := 0
	for pos < len(tmpl) {
		idx := strings.Index(tmpl[pos:], open)
		textEnd := len(tmpl)
		if idx >= 0 {
			textEnd = pos + idx
		}
		// Text: each white space character is its own token so that a line
		// holding only tags and white space can be removed.
		for i := pos; i < textEnd; {
			r, w := decodeRune(tmpl[i:])
			if isJSSpace(r) {
				spaces = append(spaces, len(toks))
				toks = append(toks, rawToken{typ: 't', val: tmpl[i : i+w]})
				i += w
				if r == '\n' {
					stripSpace()
				}
				continue
			}
			j := i + w
			for j < textEnd {
				r2, w2 := decodeRune(tmpl[j:])
				if isJSSpace(r2) {
					break
				}
				j += w2
			}
			nonSpace = true
			toks = append(toks, rawToken{typ: 't', val: tmpl[i:j]})
			i = j
		}
		if idx < 0 {
			break
		}
		start := textEnd
		pos = skipSpace(tmpl, textEnd+len(open))
		hasTag = true

		typ := byte('n')
		if pos < len(tmpl) && strings.IndexByte("#^/>{&=!", tmpl[pos]) >= 0 {
			typ = tmpl[pos]
			pos++
		}
		pos = skipSpace(tmpl, pos)

		var value string
		switch typ {
		case '=':
			end := scanUntil(tmpl, pos, "=")
			value = tmpl[pos:end]
			pos, _ = scanLit(tmpl, end, "=")
			pos = scanUntil(tmpl, pos, close)
		case '{':
			end := scanUntil(tmpl, pos, "}"+close)
			value = tmpl[pos:end]
			pos, _ = scanLit(tmpl, end, "}")
			pos = scanUntil(tmpl, pos, close)
			typ = '&'
		default:
			end := scanUntil(tmpl, pos, close)
			value = tmpl[pos:end]
			pos = end
		}
		var ok bool
		if pos, ok = scanLit(tmpl, pos, close); !ok {
			return nil, fmt.Errorf("Unclosed tag at %d", jsPos(tmpl, pos))
		}
		toks = append(toks, rawToken{typ: typ, val: value, start: start, end: pos})

		switch typ {
		case '#', '^':
			sections = append(sections, len(toks)-1)
		case '/':
			if len(sections) == 0 {
				return nil, fmt.Errorf("Unopened section \"%s\" at %d", value, jsPos(tmpl, start))
			}
			openTok := toks[sections[len(sections)-1]]
			sections = sections[:len(sections)-1]
			if openTok.val != value {
				return nil, fmt.Errorf("Unclosed section \"%s\" at %d", openTok.val, jsPos(tmpl, start))
			}
		case 'n', '&':
			nonSpace = true
		case '=':
			tags := splitTags(value)
			if len(tags) != 2 {
				return nil, fmt.Errorf("Invalid tags: %s", strings.Join(tags, ","))
			}
			open, close = tags[0], tags[1]
		}
	}
	stripSpace()
	if len(sections) > 0 {
		return nil, fmt.Errorf("Unclosed section \"%s\" at %d", toks[sections[len(sections)-1]].val, jsPos(tmpl, len(tmpl)))
	}
	return nest(tmpl, toks), nil
}

// splitTags is `value.split(/\s+/, 2)`.
func splitTags(v string) []string {
	var out []string
	for len(out) < 2 {
		i := 0
		for i < len(v) {
			r, w := decodeRune(v[i:])
			if isJSSpace(r) {
				break
			}
			i += w
		}
		out = append(out, v[:i])
		if i == len(v) {
			break
		}
		v = v[skipSpace(v, i):]
	}
	return out
}

// nest squashes adjacent text and builds the section tree; comments, set
// delimiters and partials render nothing (no partials are ever given), so
// they are dropped here.
func nest(tmpl string, toks []rawToken) []*node {
	var root []*node
	collector := &root
	type open struct {
		n         *node
		collector *[]*node
		bodyStart int
	}
	var stack []open
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			*collector = append(*collector, &node{kind: nodeText, text: text.String()})
			text.Reset()
		}
	}
	for _, t := range toks {
		if t.deleted {
			continue
		}
		switch t.typ {
		case 't':
			text.WriteString(t.val)
		case 'n', '&':
			flush()
			*collector = append(*collector, newNameNode(nodeValue, t.val))
		case '#', '^':
			flush()
			kind := nodeSection
			if t.typ == '^' {
				kind = nodeInverted
			}
			n := newNameNode(kind, t.val)
			*collector = append(*collector, n)
			stack = append(stack, open{n, collector, t.end})
			collector = &n.children
		case '/':
			flush()
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			top.n.inner = tmpl[top.bodyStart:t.start]
			collector = top.collector
		}
	}
	flush()
	return root
}

func newNameNode(kind nodeKind, name string) *node {
	n := &node{kind: kind, text: name}
	if strings.IndexByte(name, '.') > 0 {
		n.path = strings.Split(name, ".")
	}
	return n
}
