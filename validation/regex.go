package validation

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dlclark/regexp2/v2"

	"sentinel-go/jsv"
)

// jsRegexp is a JavaScript RegExp(pattern, flags) run by regexp2 in its
// ECMAScript mode.
type jsRegexp struct {
	re     *regexp2.Regexp
	sticky bool
}

// regexMatchTimeout bounds one match: JavaScript has no such bound, but a
// daemon must not hang on a catastrophically backtracking pattern. A match
// that times out counts as "no match" (the rule fails).
const regexMatchTimeout = time.Second

var (
	regexCache     sync.Map // flags + "/" + pattern -> cachedRegexp
	regexCacheSize atomic.Int64
)

const regexCacheMax = 4096

type cachedRegexp struct {
	re  *jsRegexp
	err error
}

// errSyntax stands for the SyntaxError JavaScript's RegExp constructor throws.
var errSyntax = errors.New("SyntaxError")

// regexArgs returns RegExp's arguments from regex(p[, flags]): a missing
// pattern is undefined, i.e. the empty pattern (?:), a missing flags argument
// means no flags.
func regexArgs(args []any) (pattern, flags string) {
	pattern = "(?:)"
	if len(args) > 0 {
		pattern = jsv.String(args[0])
	}
	if len(args) > 1 {
		flags = jsv.String(args[1])
	}
	return pattern, flags
}

// compileJSRegexp compiles and caches a JavaScript regular expression.
func compileJSRegexp(pattern, flags string) (*jsRegexp, error) {
	key := flags + "/" + pattern
	if c, ok := regexCache.Load(key); ok {
		return c.(cachedRegexp).re, c.(cachedRegexp).err
	}
	re, err := doCompileJSRegexp(pattern, flags)
	if regexCacheSize.Add(1) > regexCacheMax {
		// Patterns come from configuration, so the cache stays small in
		// practice; start over if something feeds it endlessly.
		regexCache.Range(func(k, _ any) bool { regexCache.Delete(k); return true })
		regexCacheSize.Store(1)
	}
	regexCache.Store(key, cachedRegexp{re, err})
	return re, err
}

func doCompileJSRegexp(pattern, flags string) (*jsRegexp, error) {
	opts := regexp2.ECMAScript
	out := &jsRegexp{}
	seen := map[rune]bool{}
	for _, f := range flags {
		if seen[f] {
			return nil, errSyntax
		}
		seen[f] = true
		switch f {
		case 'i':
			opts |= regexp2.IgnoreCase
		case 'm':
			opts |= regexp2.Multiline
		case 's':
			opts |= regexp2.Singleline
		case 'u', 'v':
			opts |= regexp2.Unicode
		case 'y':
			out.sticky = true
		case 'g', 'd':
			// test() on a fresh RegExp starts at lastIndex 0 either way.
		default:
			return nil, errSyntax
		}
	}
	if seen['u'] && seen['v'] {
		return nil, errSyntax
	}
	re, err := regexp2.Compile(pattern, opts)
	if err != nil {
		return nil, errSyntax
	}
	re.MatchTimeout = regexMatchTimeout
	out.re = re
	return out, nil
}

// test is RegExp.prototype.test on s: not anchored unless the pattern is;
// a sticky regexp must match at the start.
func (r *jsRegexp) test(s string) bool {
	if !r.sticky {
		ok, err := r.re.MatchString(s)
		return ok && err == nil
	}
	m, err := r.re.FindStringMatch(s)
	// The leftmost match starts at 0 exactly when a match at 0 exists.
	return err == nil && m != nil && m.RuneIndex == 0
}
