package transitions

import (
	"fmt"
	"sort"
	"strings"

	"sentinel-go/config"
	"sentinel-go/jsv"
	"sentinel-go/templates"
)

// Check validates app_settings as `sentinel check-config` does: every
// problem the daemon finds when it loads them (unknown transitions, each
// enabled transition's config rules, expression syntax errors) plus lint the
// daemon only logs: template syntax errors (the daemon records those on the
// docs at run time, as the reference does), misspelled disabled keys, and
// keys of the wrong type or format (shape.go), of enabled and disabled
// transitions alike. Problems are sorted by path.
func Check(raw map[string]any, tr config.Translations) []config.Problem {
	cfg := Load(raw, tr)
	problems := append([]config.Problem{}, cfg.Problems...)
	problems = append(problems, Lint(raw)...)
	problems = withShapes(problems, checkShapes(raw))
	sort.SliceStable(problems, func(i, j int) bool { return problems[i].Path < problems[j].Path })
	return problems
}

// withShapes adds the shape errors to the loaders' problems. A loader's error
// at the same path already says what is wrong and stays alone; a loader's
// warning at a path with a shape error gives way to it: the daemon goes on
// with such a key (skipping what it configures), check-config refuses it.
func withShapes(problems, shapes []config.Problem) []config.Problem {
	errAt, shapeAt := map[string]bool{}, map[string]bool{}
	for _, p := range problems {
		if p.Severity == config.Error {
			errAt[p.Path] = true
		}
	}
	var out []config.Problem
	for _, p := range shapes {
		if !errAt[p.Path] {
			shapeAt[p.Path] = true
			out = append(out, p)
		}
	}
	for _, p := range problems {
		if p.Severity != config.Error && shapeAt[p.Path] {
			continue
		}
		out = append(out, p)
	}
	return out
}

// Lint finds problems that do not stop the daemon: template syntax errors in
// message texts and unknown transition keys that are disabled.
func Lint(raw map[string]any) []config.Problem {
	var problems []config.Problem
	walkTemplates(raw, "", &problems)
	known := map[string]bool{}
	for _, n := range Names() {
		known[n] = true
	}
	for k := range noOps {
		known[k] = true
	}
	for k, v := range jsv.Map(raw["transitions"]) {
		if known[k] || config.IsEnabled(v) {
			continue
		}
		msg := fmt.Sprintf("unknown transition %q (disabled, so ignored)", k)
		if s := closest(k, Names()); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		problems = append(problems, config.Warnf("transitions."+k, "%s", msg))
	}
	return problems
}

// messageKeys hold message texts in config objects (messages[], schedules,
// alerts, validations).
var messageKeys = map[string]bool{"message": true, "messages": true}

func walkTemplates(v any, path string, out *[]config.Problem) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := joinPath(path, k)
			if messageKeys[k] {
				checkTemplateValue(e, p, out)
				if _, isList := e.([]any); isList {
					// also walk: `messages` of schedules hold objects with their own `message`
					walkTemplates(e, p, out)
				}
				continue
			}
			walkTemplates(e, p, out)
		}
	case []any:
		for i, e := range x {
			walkTemplates(e, fmt.Sprintf("%s[%d]", path, i), out)
		}
	}
}

// checkTemplateValue checks a `message` value: a string, or a list of
// {locale, content}.
func checkTemplateValue(v any, path string, out *[]config.Problem) {
	switch x := v.(type) {
	case string:
		if err := templates.Check(x); err != nil {
			*out = append(*out, config.Errorf(path, "template syntax error: %v", err))
		}
	case []any:
		for i, e := range x {
			m := jsv.Map(e)
			if c, ok := m["content"].(string); ok {
				if err := templates.Check(c); err != nil {
					*out = append(*out, config.Errorf(fmt.Sprintf("%s[%d].content", path, i), "template syntax error: %v", err))
				}
			}
		}
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// closest returns the candidate nearest to s by edit distance, when close
// enough to be a typo.
func closest(s string, candidates []string) string {
	best, bestD := "", 4
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
