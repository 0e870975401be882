// Package validation implements the `validations` rule language of CHT
// Sentinel (spec/validations.md §1–§3): a parser that compiles rules once
// when settings load and an evaluator that checks a hydrated report against
// them. Building the doc errors and the reply from the failures (§4) is the
// caller's job.
//
// Config authors wrote the rules against JavaScript semantics, so values
// compare with JavaScript `==`/`===`, parse with parseFloat/parseInt, and
// regex() runs JavaScript regular expressions (regexp2, ECMAScript mode).
package validation

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"sentinel-go/jsv"
)

// Store answers the rules that query the database (implemented elsewhere
// against CouchDB).
type Store interface {
	// ReportsByFreetext returns the data_records with a `form` whose
	// free-text index holds term ("key:value", value lower-cased).
	ReportsByFreetext(ctx context.Context, term string) ([]ReportRef, error)
	// ContactPhoneExists reports whether a contact's phone is exactly phone.
	ContactPhoneExists(ctx context.Context, phone string) (bool, error)
}

// ReportRef is one report found in the free-text index.
type ReportRef struct {
	ID           string
	Form         string
	ReportedDate float64 // epoch ms
	HasErrors    bool
}

// Env is what rules need beyond the doc.
type Env struct {
	Store Store
	// Now is the wall clock (uniqueWithin, isISOWeek's default year, and
	// isAfter/isBefore for a report without reported_date); zero = time.Now().
	Now time.Time
	// Location is the zone of day boundaries; nil = time.Local.
	Location           *time.Location
	DefaultCountryCode string // settings.default_country_code
	PhoneValidation    string // settings.phone_validation
}

// Failure is an entry whose rule was false.
type Failure struct {
	Property string
	Entry    Entry
}

// RuleError aborts a whole validation list: a rule that does not parse, or a
// JavaScript exception while one runs (iEquals on a number, a bad regex).
type RuleError struct {
	Property string // the entry's property
	Rule     string // the entry's rule text
	Err      error  // *ParseError, or the runtime error
}

func (e *RuleError) Error() string {
	return "validation of " + e.Property + " failed: " + e.Err.Error()
}

func (e *RuleError) Unwrap() error { return e.Err }

// JSON is the error as JSON.stringify would print it in JavaScript.
//
// A runtime exception is a JavaScript Error (TypeError, SyntaxError), whose
// name and message are not enumerable, so JSON.stringify prints `{}` (MDN:
// JSON.stringify only serialises enumerable own properties). The JavaScript
// form of a parse error is not specified; it is given as
// {"message": …, "name": "SyntaxError"} so that the reply says what is wrong.
func (e *RuleError) JSON() string {
	var pe *ParseError
	if !errors.As(e.Err, &pe) {
		return "{}"
	}
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
		Name    string `json:"name"`
	}{pe.Msg + " at offset " + jsv.NumberString(float64(pe.Offset)) + " of " + pe.Rule, "SyntaxError"})
	return string(b)
}

// Message is the doc error / reply text: `Error on pupil validations: <error
// as JSON>` (code invalid_report).
func (e *RuleError) Message() string {
	return "Error on pupil validations: " + e.JSON()
}

// Values returns the values under test of doc: its top-level properties
// overlaid by doc.fields (fields win).
func Values(doc map[string]any) map[string]any {
	fields, _ := doc["fields"].(map[string]any)
	out := make(map[string]any, len(doc)+len(fields))
	for k, v := range doc {
		out[k] = v
	}
	for k, v := range fields {
		out[k] = v
	}
	return out
}

// Validate evaluates every entry against doc (the hydrated report) and
// returns the failed entries in order. A rule that does not parse, or a
// runtime error in one, aborts the whole list with a *RuleError.
func Validate(ctx context.Context, cfg Config, doc map[string]any, env Env) ([]Failure, error) {
	if len(cfg.Entries) == 0 {
		return nil, nil
	}
	rules := make([]*Rule, len(cfg.Entries))
	for i := range cfg.Entries {
		e := &cfg.Entries[i]
		r, err := e.compiled()
		if err != nil {
			return nil, &RuleError{Property: e.Property, Rule: e.Rule, Err: err}
		}
		rules[i] = r
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ec := &evalCtx{ctx: ctx, env: &env, values: Values(doc), now: env.Now, loc: env.Location}
	if ec.now.IsZero() {
		ec.now = time.Now()
	}
	if ec.loc == nil {
		ec.loc = time.Local
	}
	ec.docID, _ = doc["_id"].(string)
	if rd, ok := doc["reported_date"]; ok && isNumber(rd) {
		ec.reported, ec.hasReported = jsv.Number(rd), true
	}
	var failures []Failure
	for i, r := range rules {
		e := cfg.Entries[i]
		if r.root == nil {
			continue
		}
		ec.v = ec.lookup(e.Property)
		ok, err := r.root.eval(ec)
		if err != nil {
			return nil, &RuleError{Property: e.Property, Rule: e.Rule, Err: err}
		}
		if !ok {
			failures = append(failures, Failure{Property: e.Property, Entry: e})
		}
	}
	return failures, nil
}

// Evaluation. Every term is evaluated, left to right, before the results
// are combined (the spec: "every term evaluated"); this includes both
// branches of a ternary, so a runtime error or a database lookup in the
// branch not taken still happens. The first runtime error in textual order
// is the one reported.

func (c *callNode) eval(ec *evalCtx) (bool, error) {
	if c.fn == nil {
		return true, nil // unknown functions are true
	}
	return c.fn.run(ec, ec.callValue(c), c.args, c)
}

func (n *notNode) eval(ec *evalCtx) (bool, error) {
	ok, err := n.x.eval(ec)
	return !ok, err
}

func (n *chainNode) eval(ec *evalCtx) (bool, error) {
	acc, err := n.first.eval(ec)
	if err != nil {
		return false, err
	}
	for i, x := range n.rest {
		ok, err := x.eval(ec)
		if err != nil {
			return false, err
		}
		if n.ops[i] == '&' {
			acc = acc && ok
		} else {
			acc = acc || ok
		}
	}
	return acc, nil
}

func (n *ternaryNode) eval(ec *evalCtx) (bool, error) {
	cond, err := n.cond.eval(ec)
	if err != nil {
		return false, err
	}
	then, err := n.then.eval(ec)
	if err != nil {
		return false, err
	}
	els, err := n.els.eval(ec)
	if err != nil {
		return false, err
	}
	if cond {
		return then, nil
	}
	return els, nil
}
