package validation

import (
	"fmt"

	"sentinel-go/jsv"
)

// Entry is one item of validations.list.
type Entry struct {
	Property string
	Rule     string
	// Raw is the whole config entry (translation_key, message, …).
	Raw map[string]any

	// Set by ParseConfig: the compiled rule, or why it cannot run.
	rule     *Rule
	err      error
	prepared bool
}

// compiled returns the entry's rule, compiling (and caching) it when the
// entry did not come from ParseConfig.
func (e *Entry) compiled() (*Rule, error) {
	if e.prepared {
		return e.rule, e.err
	}
	return compileCached(e.Rule)
}

// Config is a `validations` object.
type Config struct {
	JoinResponses bool
	Entries       []Entry
}

// ConfigError is a problem found while loading a validations config.
// Warnings (unknown functions, suspicious arguments, and rules that cannot
// run) do not stop the config from loading: a rule that does not parse, or
// a regex JavaScript rejects, aborts every validation of its list at run
// time with one error (validations.md §2), a per-report outcome that must
// not disable the transitions. Errors are entries that are ignored.
type ConfigError struct {
	Path    string // e.g. "validations.list[2].rule"
	Message string
	Warning bool
}

func (e *ConfigError) Error() string {
	kind := "error"
	if e.Warning {
		kind = "warning"
	}
	return kind + ": " + e.Path + ": " + e.Message
}

// ParseConfig reads the JSON `validations` object ({join_responses, list});
// nil or missing gives an empty config. join_responses is JavaScript-truthy.
// A bare array is accepted as the list (with a warning).
func ParseConfig(v any) (Config, []*ConfigError) {
	var cfg Config
	var problems []*ConfigError
	add := func(path string, warning bool, format string, args ...any) {
		problems = append(problems, &ConfigError{Path: path, Message: fmt.Sprintf(format, args...), Warning: warning})
	}
	var list any
	switch x := v.(type) {
	case nil:
		return cfg, nil
	case map[string]any:
		cfg.JoinResponses = jsv.Truthy(x["join_responses"])
		list = x["list"]
	case []any:
		add("validations", true, "is an array; expected {join_responses, list}: read as the list")
		list = x
	default:
		add("validations", false, "is not an object: ignored")
		return cfg, problems
	}
	if list == nil {
		return cfg, problems
	}
	items, ok := list.([]any)
	if !ok {
		add("validations.list", false, "is not an array: ignored")
		return cfg, problems
	}
	for i, item := range items {
		path := fmt.Sprintf("validations.list[%d]", i)
		m, ok := item.(map[string]any)
		if !ok {
			add(path, false, "is not an object: ignored")
			continue
		}
		e := Entry{Raw: m, prepared: true}
		switch p := m["property"].(type) {
		case string:
			e.Property = p
			if p == "" {
				add(path+".property", true, "is empty")
			}
		case nil:
			add(path+".property", false, "is missing")
		default:
			e.Property = jsv.String(p)
			add(path+".property", true, "is not a string: read as %q", e.Property)
		}
		switch r := m["rule"].(type) {
		case string:
			e.Rule = r
			e.rule, e.err = Compile(r)
			if e.err != nil {
				add(path+".rule", true, "%v: %s", e.err, listFails)
			} else {
				for _, w := range lint(e.rule) {
					add(path+".rule", w.warning, "%s", w.msg)
				}
			}
		case nil:
			e.rule = &Rule{}
			add(path+".rule", true, "is missing: the entry always passes")
		default:
			e.err = fmt.Errorf("rule is not a string")
			add(path+".rule", true, "is not a string: %s", listFails)
		}
		cfg.Entries = append(cfg.Entries, e)
	}
	return cfg, problems
}

// listFails says what a rule that cannot run does to the reports.
const listFails = "every report validated with this list gets the error \"Error on pupil validations\" instead"

type lintProblem struct {
	msg     string
	warning bool
}

// lint looks at a compiled rule for things that cannot work: unknown
// functions (always true), regex() with literal arguments that JavaScript
// would reject (an error whenever the rule runs), invalid durations (the
// call is always false) and missing arguments.
func lint(r *Rule) []lintProblem {
	var out []lintProblem
	for _, name := range r.UnknownFunctions() {
		out = append(out, lintProblem{fmt.Sprintf("unknown function %q is always true", name), true})
	}
	for _, c := range r.calls {
		if c.fn == nil {
			continue
		}
		switch c.fn.name {
		case "regex":
			if c.re == nil {
				p, f := regexArgs(c.args)
				out = append(out, lintProblem{fmt.Sprintf("%s: invalid regular expression /%s/%s: %s", c.name, p, f, listFails), true})
			}
		case "isafter", "isbefore", "uniquewithin":
			var d any
			if len(c.args) > 0 {
				d = c.args[len(c.args)-1]
			}
			if _, ok := parseDuration(d); !ok {
				out = append(out, lintProblem{fmt.Sprintf("%s: invalid duration %s (expected \"<n> <unit>\"): the call is always false", c.name, jsv.String(d)), true})
			}
		case "exists":
			if len(c.args) < 2 {
				out = append(out, lintProblem{c.name + ": needs a form and a field: the call is always false", true})
			}
		case "unique", "validphone", "uniquephone", "isisoweek", "equalsto":
			if len(c.args) == 0 {
				out = append(out, lintProblem{c.name + ": needs a field name", true})
			}
		}
		if c.fn.name == "unique" || c.fn.name == "uniquewithin" || c.fn.name == "exists" {
			fields := c.args
			switch c.fn.name {
			case "uniquewithin":
				if len(fields) > 0 {
					fields = fields[:len(fields)-1]
				}
			case "exists":
				if len(fields) > 1 {
					fields = fields[1:2]
				} else {
					fields = nil
				}
			}
			for _, f := range fields {
				key := jsv.String(f)
				if _, ok := freetextTerm(key, "xxx"); !ok {
					out = append(out, lintProblem{fmt.Sprintf("%s: field %q never matches the free-text index (keys _id, _rev, type, refid, content, *_date and keys not in lower case are not indexed)", c.name, key), true})
				}
			}
		}
	}
	return out
}
