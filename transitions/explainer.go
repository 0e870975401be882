package transitions

import (
	"context"
	"fmt"

	"sentinel-go/jsv"
)

// TraceEvent is one `bool_expr` evaluation, reported to Env.Trace.
type TraceEvent struct {
	// Path is the expression's config path (its compile name).
	Path string
	// Expr is the expression's source text.
	Expr string
	// Value is its truthiness (false when Err is set).
	Value bool
	// Err is the evaluation error, if any.
	Err error
}

// FilterExplainer is implemented by transitions that can say why their
// filter did not match a change. WhyNot is only called after Filter returned
// false; it must not write anything.
type FilterExplainer interface {
	WhyNot(env *Env, c *Change) string
}

// DryRunner is implemented by transitions whose Run has effects outside the
// databases (HTTP pushes): Explain calls DryRun instead of Run, which says
// what Run would do and changes nothing.
type DryRunner interface {
	DryRun(ctx context.Context, env *Env, c *Change) (would []string, err error)
}

// whyNotReport is the common start of report filters: a data_record with a
// form, not already run. It returns "" when those hold.
func whyNotReport(c *Change, name string) string {
	switch {
	case c.Doc["type"] != "data_record":
		return fmt.Sprintf("not a report: type is %s, not data_record", jsonText(c.Doc["type"]))
	case !jsv.Truthy(c.Doc["form"]):
		return "the report has no form"
	case c.HasRun(name):
		return "already ran on this doc (the info doc records it; it runs once per doc)"
	}
	return ""
}

// whyNotSubmission says why IsValidSubmission is false ("" when true).
func whyNotSubmission(env *Env, doc Doc) string {
	if IsValidSubmission(env, doc) {
		return ""
	}
	form, _ := doc["form"].(string)
	if !env.Settings().HasForm(form) {
		return fmt.Sprintf("not a valid submission: form %q is not in settings.forms and the report is not an xform (content_type xml)", form)
	}
	return fmt.Sprintf("not a valid submission: form %q is not public and the sender is unknown (no contact.phone or contact.parent.contact.phone)", form)
}
