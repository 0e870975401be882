package validation

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"time"

	"sentinel-go/jsv"
	"sentinel-go/phone"
)

// evalCtx is what a rule sees while it runs on one entry of one doc.
type evalCtx struct {
	ctx    context.Context
	env    *Env
	values map[string]any // doc top level overlaid by doc.fields
	docID  string
	// reported is the report's reported_date (epoch ms) when it is a number.
	reported    float64
	hasReported bool
	now         time.Time
	loc         *time.Location
	v           any // the value under test
}

// lookup returns a field's value under test; missing or null is "" (the
// spec says so for the entry's property; other fields get the same rule so
// that otherName(…), equalsTo, unique… treat a missing field as empty).
func (ec *evalCtx) lookup(field string) any {
	v := ec.values[field]
	if v == nil {
		return ""
	}
	return v
}

// runtimeError is a JavaScript exception raised while a rule runs (for
// example a TypeError from iEquals on a number).
type runtimeError struct {
	fn  string
	msg string
}

func (e *runtimeError) Error() string { return e.fn + ": " + e.msg }

type function struct {
	name string // canonical lower-case name
	run  func(ec *evalCtx, v any, args []any, c *callNode) (bool, error)
}

var functions map[string]*function

func init() {
	fs := []*function{
		{"equals", fnEquals},
		{"sequals", fnSEquals},
		{"iequals", fnIEquals},
		{"siequals", fnSIEquals},
		{"lenmin", fnLenMin},
		{"lenmax", fnLenMax},
		{"lenequals", fnLenEquals},
		{"min", fnMin},
		{"max", fnMax},
		{"between", fnBetween},
		{"in", fnIn},
		{"required", fnRequired},
		{"optional", fnOptional},
		{"numeric", fnNumeric},
		{"integer", fnInteger},
		{"alpha", fnAlpha},
		{"alphanumeric", fnAlphaNumeric},
		{"email", fnEmail},
		{"regex", fnRegex},
		{"equalsto", fnEqualsTo},
		{"exists", fnExists},
		{"unique", fnUnique},
		{"uniquewithin", fnUniqueWithin},
		{"isafter", fnIsAfter},
		{"isbefore", fnIsBefore},
		{"isisoweek", fnIsISOWeek},
		{"validphone", fnValidPhone},
		{"uniquephone", fnUniquePhone},
	}
	functions = make(map[string]*function, len(fs))
	for _, f := range fs {
		functions[f.name] = f
	}
}

func arg(args []any, i int) any {
	if i < len(args) {
		return args[i]
	}
	return nil // undefined
}

// equals(x): v == x.
func fnEquals(_ *evalCtx, v any, args []any, _ *callNode) (bool, error) {
	return jsv.LooseEqual(v, arg(args, 0)), nil
}

// sEquals(x): v === x.
func fnSEquals(_ *evalCtx, v any, args []any, _ *callNode) (bool, error) {
	return len(args) > 0 && strictEqual(v, args[0]), nil
}

// lowerArgs lower-cases v, which must be a string (v.toLowerCase() throws a
// TypeError otherwise), and x when it is a string. A number argument is
// compared as is (spec silent: `iEquals(5)` on "5" is then true loosely).
func lowerArgs(name string, v any, args []any) (string, any, error) {
	s, ok := v.(string)
	if !ok {
		return "", nil, &runtimeError{name, fmt.Sprintf("TypeError: %s.toLowerCase is not a function", jsv.String(v))}
	}
	x := arg(args, 0)
	if xs, ok := x.(string); ok {
		x = jsLower(xs)
	}
	return jsLower(s), x, nil
}

// iEquals(x): lower-cased v == x.
func fnIEquals(_ *evalCtx, v any, args []any, c *callNode) (bool, error) {
	s, x, err := lowerArgs(c.name, v, args)
	if err != nil {
		return false, err
	}
	return jsv.LooseEqual(s, x), nil
}

// siEquals(x): lower-cased v === x.
func fnSIEquals(_ *evalCtx, v any, args []any, c *callNode) (bool, error) {
	s, x, err := lowerArgs(c.name, v, args)
	if err != nil {
		return false, err
	}
	return len(args) > 0 && strictEqual(s, x), nil
}

// lenMin(n): v.length >= n; numbers, booleans and objects have no length.
func fnLenMin(_ *evalCtx, v any, args []any, _ *callNode) (bool, error) {
	l, ok := jsLength(v)
	return ok && l >= toNumber(args, 0), nil
}

// lenMax(n): v.length <= n.
func fnLenMax(_ *evalCtx, v any, args []any, _ *callNode) (bool, error) {
	l, ok := jsLength(v)
	return ok && l <= toNumber(args, 0), nil
}

// lenEquals(n): String(v).length == n.
func fnLenEquals(_ *evalCtx, v any, args []any, _ *callNode) (bool, error) {
	return jsv.LooseEqual(float64(utf16Len(jsv.String(v))), arg(args, 0)), nil
}

// min(n): parseFloat(v) >= n.
func fnMin(_ *evalCtx, v any, args []any, _ *callNode) (bool, error) {
	return parseFloat(v) >= toNumber(args, 0), nil
}

// max(n): parseFloat(v) <= n.
func fnMax(_ *evalCtx, v any, args []any, _ *callNode) (bool, error) {
	return parseFloat(v) <= toNumber(args, 0), nil
}

// between(a, b): a <= parseFloat(v) <= b.
func fnBetween(_ *evalCtx, v any, args []any, _ *callNode) (bool, error) {
	f := parseFloat(v)
	return f >= toNumber(args, 0) && f <= toNumber(args, 1), nil
}

// in(a, …): v == some argument.
func fnIn(_ *evalCtx, v any, args []any, _ *callNode) (bool, error) {
	for _, a := range args {
		if jsv.LooseEqual(v, a) {
			return true, nil
		}
	}
	return false, nil
}

// required: v is truthy ("", 0 and false fail; "0" passes).
func fnRequired(_ *evalCtx, v any, _ []any, _ *callNode) (bool, error) {
	return jsv.Truthy(v), nil
}

func fnOptional(*evalCtx, any, []any, *callNode) (bool, error) { return true, nil }

// numeric: parseFloat(v) is not NaN and Number(v) is finite.
func fnNumeric(_ *evalCtx, v any, _ []any, _ *callNode) (bool, error) {
	n := jsv.Number(v)
	return !math.IsNaN(parseFloat(v)) && !math.IsNaN(n) && !math.IsInf(n, 0), nil
}

// integer: parseInt(v, 10) == v.
func fnInteger(_ *evalCtx, v any, _ []any, _ *callNode) (bool, error) {
	return jsv.LooseEqual(parseInt10(v), v), nil
}

// The built-in patterns only use ASCII classes, so Go's regexp matches
// exactly what JavaScript's RegExp would (the email pattern's i flag is
// spelled out as A-Za-z to avoid Go's Unicode case folding).
var (
	reAlpha        = regexp.MustCompile(`^[a-zA-Z]+$`)
	reAlphaNumeric = regexp.MustCompile(`^[a-zA-Z0-9]+$`)
	reEmail        = regexp.MustCompile(`^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,4}$`)
)

func fnAlpha(_ *evalCtx, v any, _ []any, _ *callNode) (bool, error) {
	return reAlpha.MatchString(jsv.String(v)), nil
}

func fnAlphaNumeric(_ *evalCtx, v any, _ []any, _ *callNode) (bool, error) {
	return reAlphaNumeric.MatchString(jsv.String(v)), nil
}

func fnEmail(_ *evalCtx, v any, _ []any, _ *callNode) (bool, error) {
	return reEmail.MatchString(jsv.String(v)), nil
}

// regex(p[, flags]): new RegExp(p, flags).test(String(v)), not anchored. An
// invalid pattern or flags is a SyntaxError, i.e. a runtime error.
func fnRegex(_ *evalCtx, v any, args []any, c *callNode) (bool, error) {
	re := c.re
	if re == nil {
		var err error
		re, err = compileJSRegexp(regexArgs(args))
		if err != nil {
			return false, &runtimeError{c.name, "SyntaxError: Invalid regular expression"}
		}
	}
	return re.test(jsv.String(v)), nil
}

// equalsTo(field): v == value(field).
func fnEqualsTo(ec *evalCtx, v any, args []any, _ *callNode) (bool, error) {
	return jsv.LooseEqual(v, ec.lookup(fieldArg(args, 0))), nil
}

// fieldArg returns a field-name argument as a string ("" when missing).
func fieldArg(args []any, i int) string {
	if i < len(args) {
		return jsv.String(args[i])
	}
	return ""
}

func fnIsAfter(ec *evalCtx, v any, args []any, _ *callNode) (bool, error) {
	return ec.compareDay(v, args, 1), nil
}

func fnIsBefore(ec *evalCtx, v any, args []any, _ *callNode) (bool, error) {
	return ec.compareDay(v, args, -1), nil
}

// compareDay implements isAfter (sign 1: the day of v is on or after the day
// of reported_date + duration) and isBefore (sign -1: on or before the day of
// reported_date - duration), in the configured zone. Invalid date or
// duration: false. A report without a numeric reported_date is taken as
// reported now (spec silent).
func (ec *evalCtx) compareDay(v any, args []any, sign float64) bool {
	d, ok := parseDuration(arg(args, 0))
	if !ok {
		return false
	}
	date, ok := parseDate(v, ec.loc)
	if !ok {
		return false
	}
	base := ec.now.In(ec.loc)
	if ec.hasReported {
		base = time.UnixMilli(int64(ec.reported)).In(ec.loc)
	}
	target := d.addTo(base, sign)
	dv, dt := dayNumber(date.In(ec.loc)), dayNumber(target.In(ec.loc))
	if sign > 0 {
		return dv >= dt
	}
	return dv <= dt
}

// dayNumber counts calendar days of t's wall-clock date.
func dayNumber(t time.Time) int64 {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

var (
	reWeek = regexp.MustCompile(`^[0-9]{1,2}$`)
	reYear = regexp.MustCompile(`^[0-9]{4}$`)
)

// isISOWeek(weekField[, yearField]): the week field holds 1–2 digits, the
// year field (when named) 4 digits, else the current year is used, and the
// week is between 1 and the number of ISO weeks of that year. A named year
// field that is empty fails (spec silent).
func fnIsISOWeek(ec *evalCtx, _ any, args []any, _ *callNode) (bool, error) {
	week := jsv.String(ec.lookup(fieldArg(args, 0)))
	if !reWeek.MatchString(week) {
		return false, nil
	}
	year := ec.now.In(ec.loc).Year()
	if len(args) > 1 {
		ys := jsv.String(ec.lookup(fieldArg(args, 1)))
		if !reYear.MatchString(ys) {
			return false, nil
		}
		year = int(parseInt10(ys))
	}
	w := int(parseInt10(week))
	return w >= 1 && w <= isoWeeksInYear(year), nil
}

// isoWeeksInYear is 53 when 28 December falls in week 53, else 52.
func isoWeeksInYear(year int) int {
	_, w := time.Date(year, time.December, 28, 12, 0, 0, 0, time.UTC).ISOWeek()
	return w
}

// validPhone(field): value(field) is a valid phone number (sms.md §5).
func fnValidPhone(ec *evalCtx, _ any, args []any, _ *callNode) (bool, error) {
	raw := jsv.String(ec.lookup(fieldArg(args, 0)))
	return phone.IsValid(raw, ec.env.DefaultCountryCode, ec.env.PhoneValidation), nil
}

// uniquePhone(field): no contact's phone is exactly value(field). Database
// errors (or no Store) give false.
func fnUniquePhone(ec *evalCtx, _ any, args []any, _ *callNode) (bool, error) {
	if ec.env.Store == nil {
		return false, nil
	}
	raw := jsv.String(ec.lookup(fieldArg(args, 0)))
	exists, err := ec.env.Store.ContactPhoneExists(ec.ctx, raw)
	if err != nil {
		return false, nil
	}
	return !exists, nil
}

// callValue returns the value a call works on: v, or for otherName('f', …)
// the value of f.
func (ec *evalCtx) callValue(c *callNode) any {
	if c.other {
		return ec.lookup(c.field)
	}
	return ec.v
}
