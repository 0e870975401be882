package transitions

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/parser"
	"github.com/dop251/goja/token"

	"sentinel-go/config"
	"sentinel-go/couch"
	"sentinel-go/jsexpr"
	"sentinel-go/jsv"
	"sentinel-go/messages"
)

// conditionalAlerts sends an alert when a configured JavaScript condition
// over the incoming report, and the earlier reports of its form from the
// same place, is true (transitions/conditional_alerts.md).
type conditionalAlerts struct {
	alerts []condAlert
}

// condAlert is one entry of `alerts`, checked at load.
type condAlert struct {
	path string
	form string
	// prog is the condition; nil when it was not a string (condErr then
	// fails the transition on reports of the form).
	prog    *jsexpr.Program
	condErr error
	// history is true when the condition mentions the form code: it then
	// gets the FORM(i) helper and the form's history is read.
	history bool
	spec    messages.Spec
}

// condHistoryGlobal is the host function behind FORM(i). The helper itself
// is a JavaScript function declared after the condition (declarations are
// hoisted, so it exists when the condition runs, and it does not change the
// completion value) so that an index out of range gives `undefined`, as an
// array lookup does, rather than the `null` a host function returns.
const condHistoryGlobal = "__conditional_alerts_report"

func newConditionalAlerts(s *config.Settings, path string) (Transition, []config.Problem) {
	raw, present := s.Raw["alerts"]
	t := &conditionalAlerts{}
	var entries []any
	var paths []string
	switch x := raw.(type) {
	case nil:
		if !present {
			return t, []config.Problem{config.Warnf("alerts", "conditional_alerts is enabled but no alerts are configured: it does nothing")}
		}
	case []any:
		for i, e := range x {
			entries = append(entries, e)
			paths = append(paths, fmt.Sprintf("alerts[%d]", i))
		}
	case map[string]any:
		// Keys are ignored; JSON object order is lost in decoding, so the
		// alerts run in key order, which is at least stable.
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			entries = append(entries, x[k])
			paths = append(paths, "alerts."+k)
		}
	default:
		return nil, []config.Problem{config.Errorf("alerts", "must be an array of alerts (or an object whose values are alerts)")}
	}
	var problems []config.Problem
	for i, e := range entries {
		a, ps := parseCondAlert(e, paths[i])
		problems = append(problems, ps...)
		if a != nil {
			t.alerts = append(t.alerts, *a)
		}
	}
	return t, problems
}

func parseCondAlert(v any, path string) (*condAlert, []config.Problem) {
	m := jsv.Map(v)
	if m == nil {
		return nil, []config.Problem{config.Errorf(path, "must be an object")}
	}
	var problems []config.Problem
	a := &condAlert{path: path, spec: messages.SpecOf(m)}
	a.form, _ = m["form"].(string)
	if a.form == "" {
		problems = append(problems, config.Warnf(path+".form", "missing or not a string: the alert never applies"))
	}
	if a.spec.TranslationKey == "" && a.spec.Message == nil {
		problems = append(problems, config.Warnf(path, "has neither message nor translation_key: its alerts have no text"))
	}
	src, ok := m["condition"].(string)
	if !ok {
		a.condErr = fmt.Errorf("%s.condition must be a string holding a JavaScript expression, got %s", path, jsonText(m["condition"]))
		problems = append(problems, config.Warnf(path+".condition",
			"must be a string, got %s: reports of form %q fail conditional_alerts until this is fixed", jsonText(m["condition"]), a.form))
		return a, problems
	}
	name := path + ".condition"
	// Compile the condition as written first, so syntax errors point into it.
	plain, err := jsexpr.Compile(name, src)
	if err != nil {
		return nil, append(problems, config.Errorf(name, "%v", err))
	}
	a.prog = plain
	if fixed := leftAssociate(src, "", ""); fixed != src {
		if p, err := jsexpr.Compile(name, fixed); err == nil {
			a.prog, src = p, fixed
		}
	}
	if a.form != "" && strings.Contains(src, a.form) {
		a.history = true
		wrapped, err := jsexpr.Compile(name, src+"\n;function "+a.form+"(i) { var r = "+condHistoryGlobal+"(i); return r === null ? undefined : r; }")
		if err != nil {
			problems = append(problems, config.Warnf(name,
				"form code %q cannot name a JavaScript function (%v): %s(i) is not available to the condition", a.form, err, a.form))
		} else {
			a.prog = wrapped
		}
	}
	return a, problems
}

func (*conditionalAlerts) Name() string { return "conditional_alerts" }

// Filter: a report with a form, not processed before, a valid submission.
// Whether an alert applies is decided in Run.
func (t *conditionalAlerts) Filter(env *Env, c *Change) bool {
	form, _ := c.Doc["form"].(string)
	if c.Doc["type"] != "data_record" || form == "" || c.HasRun(t.Name()) {
		return false
	}
	return IsValidSubmission(env, c.Doc)
}

// Run evaluates the conditions of the alerts of the report's form in config
// order, then adds one message per true condition. A condition that throws
// (or runs out of time) or a failed history query fails the transition
// before any message is added, so a failed run leaves no partial alerts.
func (t *conditionalAlerts) Run(ctx context.Context, env *Env, c *Change) (bool, error) {
	doc := c.Doc
	form, _ := doc["form"].(string)
	var history []Doc
	historyRead := false
	var fire []*condAlert
	for i := range t.alerts {
		a := &t.alerts[i]
		if a.form != form {
			continue
		}
		if a.prog == nil {
			return false, a.condErr
		}
		globals := map[string]any{"doc": doc}
		if a.history {
			if !historyRead {
				h, err := formHistory(ctx, env, doc)
				if err != nil {
					return false, err
				}
				history, historyRead = h, true
			}
			globals[condHistoryGlobal] = historyFunc(history)
		}
		if env.JS == nil {
			env.JS = jsexpr.NewSandbox(jsexpr.Options{})
		}
		ok, err := env.JS.Truthy(ctx, a.prog, globals)
		if err != nil {
			return false, err
		}
		if ok {
			fire = append(fire, a)
		}
	}
	if len(fire) == 0 {
		return false, nil
	}
	g := env.Generator()
	changed := false
	for _, a := range fire {
		if added, err := g.Add(doc, a.spec, nil, messages.AddOptions{}); err == nil && added.Task != nil {
			changed = true
		}
	}
	return changed, nil
}

// formHistory is the list behind FORM(i): the stored reports of the doc's
// form whose submitter's parent is the doc's submitter's parent, with the
// incoming doc added (or put in place of its stored version), newest first by
// reported_date. On equal dates the incoming doc comes first.
func formHistory(ctx context.Context, env *Env, doc Doc) ([]Doc, error) {
	parentID, _ := jsv.Get(doc, "contact.parent._id")
	pid, _ := parentID.(string)
	if pid == "" {
		return nil, fmt.Errorf("cannot read the history of form %v: the report's contact has no parent (doc.contact.parent._id)", doc["form"])
	}
	form, _ := doc["form"].(string)
	stored, err := reportsByFormAndParent(ctx, env, form, pid)
	if err != nil {
		return nil, fmt.Errorf("read the history of form %s: %w", form, err)
	}
	id := jsv.String(doc["_id"])
	list := []Doc{doc}
	for _, r := range stored {
		if jsv.String(r["_id"]) != id {
			list = append(list, r)
		}
	}
	sort.SliceStable(list, func(i, j int) bool {
		return reportedMs(list[i]) > reportedMs(list[j])
	})
	return list, nil
}

// reportsByFormAndParentStore is the history lookup of *couch.DB, used by
// conditional_alerts and update_scheduled_reports. It is an optional
// capability of env.Store rather than a Store method so that the in-memory
// stores of other tests need not implement it.
type reportsByFormAndParentStore interface {
	ReportsByFormAndParent(ctx context.Context, form, parentID string) ([]Doc, error)
}

var _ reportsByFormAndParentStore = (*couch.DB)(nil)

// reportsByFormAndParent returns the reports of form whose stored
// contact.parent._id is parentID, oldest first.
func reportsByFormAndParent(ctx context.Context, env *Env, form, parentID string) ([]Doc, error) {
	s, ok := env.Store.(reportsByFormAndParentStore)
	if !ok {
		return nil, fmt.Errorf("the database (%T) cannot list reports by form and place", env.Store)
	}
	return s.ReportsByFormAndParent(ctx, form, parentID)
}

// reportedMs is a report's reported_date (epoch ms) for sorting; a report
// without a numeric date sorts last (oldest).
func reportedMs(d Doc) float64 {
	if f, ok := d["reported_date"].(float64); ok {
		return f
	}
	return -1 << 62
}

// historyFunc is the host function behind FORM(i): the i-th report of the
// list (an integer index, or its canonical string), else nil.
func historyFunc(list []Doc) func(args ...any) any {
	return func(args ...any) any {
		if len(args) == 0 {
			return nil
		}
		i := -1
		switch x := args[0].(type) {
		case float64:
			if x >= 0 && x == float64(int(x)) && x < float64(len(list)) {
				i = int(x)
			}
		case string:
			if n, err := strconv.Atoi(x); err == nil && strconv.Itoa(n) == x {
				i = n
			}
		}
		if i < 0 || i >= len(list) {
			return nil
		}
		return list[i]
	}
}

// leftAssociate works around a parser bug of the embedded JavaScript engine
// (goja): it parses chains of relational operators (<, <=, >, >=,
// instanceof, in) right to left, so `1000 < x < 10000` runs as
// `1000 < (x < 10000)` where JavaScript means `(1000 < x) < 10000`. The
// conditions config authors wrote for the reference rely on the JavaScript
// reading (the spec even warns about it), so the source is rewritten with
// explicit parentheses before it is compiled: `(1000 < x) < 10000`. Sources
// without such chains, or that do not parse, come back unchanged.
//
// prefix and suffix are put around src for parsing only (CompileFunction
// sources are parsed as "(" + src + ")"). The proper home of this fix is the
// jsexpr package, for every expression of the config.
func leftAssociate(src, prefix, suffix string) string {
	full := prefix + src + suffix
	file, err := parser.ParseFile(nil, "", full, 0, parser.WithDisableSourceMaps)
	if err != nil {
		return src
	}
	fx := &chainFixer{src: full, stmtStarts: map[int]bool{}}
	fx.collect(reflect.ValueOf(file))
	fx.walk(reflect.ValueOf(file))
	if len(fx.inserts) == 0 {
		return src
	}
	sort.SliceStable(fx.inserts, func(i, j int) bool { return fx.inserts[i].pos > fx.inserts[j].pos })
	out := full
	for _, in := range fx.inserts {
		text := in.text
		if fx.stmtStarts[in.pos] && endsExpression(out[:in.pos]) {
			// A statement starting with "(" would continue the previous
			// line's expression (a call) when that line has no semicolon;
			// "0, " starts it with a token that cannot, and leaves its
			// value unchanged.
			text = "0, " + text
		}
		out = out[:in.pos] + text + out[in.pos:]
	}
	if _, err := parser.ParseFile(nil, "", out, 0, parser.WithDisableSourceMaps); err != nil {
		return src // cannot happen; never make a working source fail
	}
	return out[len(prefix) : len(out)-len(suffix)]
}

// endsExpression reports whether the last significant character of s may
// end an expression, so that a "(" after it would read as a call.
func endsExpression(s string) bool {
	s = strings.TrimRight(s, " \t\n\r\v\f\u00a0\ufeff\u2028\u2029")
	if s == "" {
		return false
	}
	return !strings.ContainsAny(s[len(s)-1:], "(;{,=:?![&|^~<>*%")
}

type chainInsert struct {
	pos  int
	text string
}

// chainFixer finds the relational chains of one parsed source.
type chainFixer struct {
	src      string
	literals [][2]int // offsets of string, template-text and regexp literals
	// stmtStarts are the offsets where expression statements start.
	stmtStarts map[int]bool
	inserts    []chainInsert
}

var nodeType = reflect.TypeOf((*ast.Node)(nil)).Elem()

func isRelational(e ast.Expression) (*ast.BinaryExpression, bool) {
	b, ok := e.(*ast.BinaryExpression)
	if !ok || b == nil {
		return nil, false
	}
	switch b.Operator {
	case token.LESS, token.LESS_OR_EQUAL, token.GREATER, token.GREATER_OR_EQUAL, token.INSTANCEOF, token.IN:
		return b, true
	}
	return nil, false
}

// children calls fn for every AST node directly or indirectly held by v
// that is not itself inside another node (i.e. the next level of nodes).
func children(v reflect.Value, fn func(ast.Node)) {
	switch v.Kind() {
	case reflect.Interface:
		if !v.IsNil() {
			children(v.Elem(), fn)
		}
	case reflect.Ptr:
		if v.IsNil() {
			return
		}
		if v.Type().Implements(nodeType) && v.CanInterface() {
			fn(v.Interface().(ast.Node))
			return
		}
		children(v.Elem(), fn)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				children(v.Field(i), fn)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			children(v.Index(i), fn)
		}
	}
}

// eachNode calls fn on n and every node below it.
func eachNode(n ast.Node, fn func(ast.Node)) {
	fn(n)
	children(reflect.ValueOf(n).Elem(), func(c ast.Node) { eachNode(c, fn) })
}

// span is the source extent [start, end) of n as offsets: the smallest
// start and largest end over n and its descendants (some node types leave
// parts such as a template's tag out of their own positions).
func (fx *chainFixer) span(n ast.Node) (start, end int) {
	start, end = -1, -1
	eachNode(n, func(c ast.Node) {
		if i0 := int(c.Idx0()) - 1; i0 >= 0 && (start < 0 || i0 < start) {
			start = i0
		}
		if i1 := int(c.Idx1()) - 1; i1 >= 0 && i1 > end && i1 <= len(fx.src) {
			end = i1
		}
	})
	return start, end
}

// collect records the literals and the starts of expression statements.
func (fx *chainFixer) collect(v reflect.Value) {
	children(v, func(n ast.Node) {
		switch n.(type) {
		case *ast.StringLiteral, *ast.TemplateElement, *ast.RegExpLiteral:
			s, e := fx.span(n)
			fx.literals = append(fx.literals, [2]int{s, e})
			return
		case *ast.ExpressionStatement:
			if s, _ := fx.span(n); s >= 0 {
				fx.stmtStarts[s] = true
			}
		}
		fx.collect(reflect.ValueOf(n).Elem())
	})
}

// scanParens calls fn for each "(" and ")" of src[from:to] outside
// literals and comments.
func (fx *chainFixer) scanParens(from, to int, fn func(open bool)) {
	for i := from; i < to && i < len(fx.src); i++ {
		skipped := false
		for _, l := range fx.literals {
			if i >= l[0] && i < l[1] {
				i, skipped = l[1]-1, true
				break
			}
		}
		if skipped {
			continue
		}
		switch {
		case strings.HasPrefix(fx.src[i:], "//"):
			if j := strings.IndexAny(fx.src[i:], "\n\r\u2028\u2029"); j >= 0 {
				i += j
			} else {
				i = len(fx.src)
			}
		case strings.HasPrefix(fx.src[i:], "/*"):
			if j := strings.Index(fx.src[i+2:], "*/"); j >= 0 {
				i += j + 3
			} else {
				i = len(fx.src)
			}
		case fx.src[i] == '(':
			fn(true)
		case fx.src[i] == ')':
			fn(false)
		}
	}
}

// parenthesized reports whether r, the right operand of b, was written in
// parentheses (the parser keeps no trace of them). Between b's left operand
// and r there may be ")" closing the left operand's own parentheses, the
// operator, and "(" that open either around r or around a leading part of
// r. Scanning r, a ")" with no "(" of r's own open closes one of the
// latter; any still open at r's end wraps r.
func (fx *chainFixer) parenthesized(b, r *ast.BinaryExpression) bool {
	_, leftEnd := fx.span(b.Left)
	rStart, rEnd := fx.span(r)
	if leftEnd < 0 || rStart < leftEnd {
		return true // positions unknown: leave it alone
	}
	outer := 0
	fx.scanParens(leftEnd, rStart, func(open bool) {
		if open {
			outer++
		}
	})
	inner := 0
	fx.scanParens(rStart, rEnd, func(open bool) {
		switch {
		case open:
			inner++
		case inner > 0:
			inner--
		default:
			outer--
		}
	})
	return outer > 0
}

// walk finds every chain head: a relational expression whose unparenthesized
// right operands are relational too. For x0 op1 x1 op2 x2 … opk xk it asks
// for k-1 "(" before x0 and a ")" after each of x1 … x(k-1).
func (fx *chainFixer) walk(v reflect.Value) {
	children(v, func(n ast.Node) {
		b, ok := n.(ast.Expression)
		if !ok {
			fx.walk(reflect.ValueOf(n).Elem())
			return
		}
		head, ok := isRelational(b)
		if !ok {
			fx.walk(reflect.ValueOf(n).Elem())
			return
		}
		operands := []ast.Expression{head.Left}
		cur := head
		for {
			r, ok := isRelational(cur.Right)
			if !ok || fx.parenthesized(cur, r) {
				break
			}
			operands = append(operands, r.Left)
			cur = r
		}
		operands = append(operands, cur.Right)
		if k := len(operands) - 1; k >= 2 {
			start, _ := fx.span(operands[0])
			if start >= 0 {
				fx.inserts = append(fx.inserts, chainInsert{start, strings.Repeat("(", k-1)})
				for _, x := range operands[1:k] {
					if _, end := fx.span(x); end >= 0 {
						fx.inserts = append(fx.inserts, chainInsert{end, ")"})
					}
				}
			}
		}
		for _, x := range operands {
			fx.walkNode(x)
		}
	})
}

// walkNode walks n itself (not only its children).
func (fx *chainFixer) walkNode(n ast.Node) {
	holder := struct{ N ast.Node }{n}
	fx.walk(reflect.ValueOf(holder))
}
