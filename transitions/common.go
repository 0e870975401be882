package transitions

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"sentinel-go/config"
	"sentinel-go/jsexpr"
	"sentinel-go/jsv"
	"sentinel-go/messages"
	"sentinel-go/validation"
)

// Generator returns the message generator of this change.
func (e *Env) Generator() *messages.Generator {
	return &messages.Generator{Settings: e.Config.Settings, Translations: e.Config.Translations,
		Location: e.Location, Now: e.Now, Dups: e.Dups, Rand: e.Rand}
}

// messageEntries reads a transition's `messages` config.
func messageEntries(v any) []map[string]any {
	var out []map[string]any
	for _, e := range jsv.Slice(v) {
		if m := jsv.Map(e); m != nil {
			out = append(out, m)
		}
	}
	return out
}

func findEvent(entries []map[string]any, eventType string) map[string]any {
	for _, e := range entries {
		if e["event_type"] == eventType {
			return e
		}
	}
	return nil
}

// addRejection adds rejection eventType (transitions README): the first
// configured message of that event type to its recipient (default the
// sender), else `messages.generic.<eventType>` to the sender; plus the error
// {code: eventType, message: the same text}. An error that renders to ""
// is dropped (messages.md §8).
func addRejection(env *Env, doc Doc, entries []map[string]any, eventType string, extra map[string]any) {
	spec := messages.Spec{TranslationKey: "messages.generic." + eventType, Recipient: "from"}
	if e := findEvent(entries, eventType); e != nil {
		spec = messages.SpecOf(e)
		if spec.Recipient == nil || spec.Recipient == "" {
			spec.Recipient = "from"
		}
	}
	g := env.Generator()
	added, err := g.Add(doc, spec, extra, messages.AddOptions{})
	switch {
	case err != nil: // parse_error added instead
	case added.Source == "":
		messages.AddError(doc, eventType, "Error: "+jsJSON(jsonPair{"message", ""}, jsonPair{"code", eventType}))
	case added.Rendered != "":
		// The lookup's result, rendered: with no text in the locale nor in
		// English, the key itself, though the message gets no text.
		messages.AddError(doc, eventType, added.Rendered)
	}
}

// addSuccess adds the first configured message of eventType, if any.
func addSuccess(env *Env, doc Doc, entries []map[string]any, eventType string, extra map[string]any) {
	if e := findEvent(entries, eventType); e != nil {
		_, _ = env.Generator().Add(doc, messages.SpecOf(e), extra, messages.AddOptions{})
	}
}

// compiledValidations is a transition's `validations` config, compiled at load.
type compiledValidations struct {
	cfg validation.Config
	on  bool
}

func compileValidations(v any, path string) (compiledValidations, []config.Problem) {
	if v == nil {
		return compiledValidations{}, nil
	}
	cfg, errs := validation.ParseConfig(v)
	var problems []config.Problem
	for _, e := range errs {
		p := path + ".validations"
		switch {
		case strings.HasPrefix(e.Path, "validations"):
			p = path + "." + e.Path
		case e.Path != "":
			p = path + ".validations." + e.Path
		}
		if e.Warning {
			problems = append(problems, config.Warnf(p, "%s", e.Message))
		} else {
			problems = append(problems, config.Errorf(p, "%s", e.Message))
		}
	}
	return compiledValidations{cfg: cfg, on: len(cfg.Entries) > 0}, problems
}

// validationStore answers the database rules of validations.
type validationStore struct{ env *Env }

func (s validationStore) ReportsByFreetext(ctx context.Context, term string) ([]validation.ReportRef, error) {
	rs, err := s.env.Store.ReportsByFreetext(ctx, term)
	if err != nil {
		return nil, err
	}
	out := make([]validation.ReportRef, len(rs))
	for i, r := range rs {
		out[i] = validation.ReportRef{ID: r.ID, Form: r.Form, ReportedDate: r.ReportedDate, HasErrors: r.HasErrors}
	}
	return out, nil
}

func (s validationStore) ContactPhoneExists(ctx context.Context, phone string) (bool, error) {
	cs, err := s.env.Store.ContactsByPhone(ctx, phone)
	return len(cs) > 0, err
}

// validate runs the validations of a transition on doc (validations.md §4).
// On failure it adds the errors and one reply, and returns true (the
// transition stops and reports a change).
func validate(ctx context.Context, env *Env, doc Doc, v compiledValidations, extra map[string]any) (failed bool, err error) {
	if !v.on {
		return false, nil
	}
	s := env.Settings()
	failures, verr := validation.Validate(ctx, v.cfg, doc, validation.Env{
		Store: validationStore{env}, Now: env.Now, Location: env.Location,
		DefaultCountryCode: s.DefaultCountryCode(), PhoneValidation: s.String("phone_validation", ""),
	})
	g := env.Generator()
	if verr != nil {
		var re *validation.RuleError
		if errors.As(verr, &re) {
			msg := re.Message()
			messages.AddError(doc, "invalid_report", msg)
			_, _ = g.Add(doc, messages.Spec{Message: msg, Recipient: "reporting_unit"}, extra, messages.AddOptions{})
			return true, nil
		}
		return false, fmt.Errorf("validations: %w", verr)
	}
	if len(failures) == 0 {
		return false, nil
	}
	var texts []string
	for _, f := range failures {
		if text, ok := failureText(g, doc, f, extra); ok {
			texts = append(texts, text)
		}
	}
	reply := ""
	switch {
	case len(texts) == 0:
		// Every text rendered to nothing: a text-less reply, as recommended
		// over the reference's "[object Object]".
	case v.cfg.JoinResponses:
		reply = strings.Join(texts, "  ")
	default:
		reply = texts[0]
	}
	// The reply is a legacy text rendered once more, with the report alone
	// as context; an unparsable one is lost (parse_error ": undefined").
	_, _ = g.Add(doc, messages.Spec{Message: reply, Recipient: "reporting_unit"}, nil, messages.AddOptions{ReportOnly: true})
	return true, nil
}

// failureText adds the error of one failed validation entry and returns its
// text for the reply (validations.md §4); false leaves the entry out of it
// (its text rendered to nothing, so its error is dropped too).
func failureText(g *messages.Generator, doc Doc, f validation.Failure, extra map[string]any) (string, bool) {
	code := "invalid_" + f.Property
	spec := messages.SpecOf(f.Entry.Raw)
	if spec.TranslationKey == "" {
		if m, _ := spec.Message.(string); spec.Message == nil || m == "" && isString(spec.Message) {
			msg := "Error: " + jsJSON(jsonPair{"code", code})
			messages.AddError(doc, code, msg)
			return msg, true
		}
	}
	text := g.Text(spec, g.Locale(doc))
	if text == "" {
		msg := "Error: " + jsJSON(jsonPair{"code", code}, jsonPair{"message", ""})
		messages.AddError(doc, code, msg)
		return msg, true
	}
	rendered, err := g.Render(doc, text, extra)
	if err != nil {
		// The reply holds the unrendered text, so it fails in turn and is
		// not sent.
		messages.AddError(doc, "parse_error", err.Error()+": "+jsJSON(jsonPair{"code", code}, jsonPair{"message", text}))
		return text, true
	}
	if rendered == "" {
		return "", false
	}
	messages.AddError(doc, code, rendered)
	return rendered, true
}

func isString(v any) bool {
	_, ok := v.(string)
	return ok
}

// jsonPair is one property of an object printed by jsJSON.
type jsonPair struct {
	key, value string
}

// jsJSON prints an object of string properties, in the given order, as
// JavaScript's JSON.stringify does: unlike encoding/json it leaves <, > and
// & alone.
func jsJSON(pairs ...jsonPair) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(jsv.Quote(p.key))
		b.WriteByte(':')
		b.WriteString(jsv.Quote(p.value))
	}
	b.WriteByte('}')
	return b.String()
}

// boolExpr is a compiled `bool_expr`; nil or empty means true.
type boolExpr struct {
	prog *jsexpr.Program
}

func compileBoolExpr(v any, path string) (boolExpr, []config.Problem) {
	src, ok := v.(string)
	if v != nil && !ok {
		return boolExpr{}, []config.Problem{config.Errorf(path, "bool_expr must be a string")}
	}
	if strings.TrimSpace(src) == "" {
		return boolExpr{}, nil
	}
	p, err := jsexpr.Compile(path, src)
	if err != nil {
		return boolExpr{}, []config.Problem{config.Errorf(path, "%s", ExprError(err))}
	}
	return boolExpr{prog: p}, nil
}

// ExprError describes an expression compile error without repeating its path.
func ExprError(err error) string { return jsexpr.Describe(err) }

// eval runs the expression with globals; empty is true.
func (b boolExpr) eval(ctx context.Context, env *Env, globals map[string]any) (bool, error) {
	if b.prog == nil || b.prog.Empty() {
		return true, nil
	}
	if env.JS == nil {
		env.JS = jsexpr.NewSandbox(jsexpr.Options{})
	}
	ok, err := env.JS.Truthy(ctx, b.prog, globals)
	if env.Trace != nil {
		env.Trace(TraceEvent{Path: b.prog.Name(), Expr: b.prog.Source(), Value: ok, Err: err})
	}
	return ok, err
}

// formMatchesLoose is the registration/muting form rule: equal ignoring case
// and surrounding punctuation or spaces.
func formMatchesLoose(code, form string) bool {
	trim := func(s string) string {
		return strings.TrimFunc(strings.ToLower(s), func(r rune) bool {
			return !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r > 127)
		})
	}
	return code != "" && trim(code) == trim(form)
}

// isMuted reports whether contact c or one of its hydrated ancestors is muted.
func isMuted(c Doc) bool {
	for n, i := c, 0; n != nil && i < 30; n, i = jsv.Map(n["parent"]), i+1 {
		if jsv.Truthy(n["muted"]) {
			return true
		}
	}
	return false
}

// fieldsCopy is the `doc` global of event bool_exprs: a shallow copy of the
// report with fields merged in where the report has no key of that name.
func fieldsCopy(doc Doc) Doc {
	out := make(Doc, len(doc))
	for k, v := range doc {
		out[k] = v
	}
	for k, v := range jsv.Map(doc["fields"]) {
		if _, ok := out[k]; !ok {
			out[k] = v
		}
	}
	return out
}

func sortStrings(s []string) { sort.Strings(s) }
