package transitions

import (
	"context"
	"reflect"

	"sentinel-go/config"
	"sentinel-go/jsv"
)

// updateScheduledReports keeps one periodic report (monthly or weekly) per
// form, period and facility: the one processed last. The others are deleted
// (transitions/update_scheduled_reports.md). Note the reference behaviour
// kept here: the report processed last wins even when it is older than the
// ones it deletes.
type updateScheduledReports struct{}

func newUpdateScheduledReports(s *config.Settings, path string) (Transition, []config.Problem) {
	if !s.ContactTypes.Configured() {
		return updateScheduledReports{}, []config.Problem{config.Warnf("contact_types",
			"update_scheduled_reports needs contact_types to know the leaf place types: without it, it does nothing")}
	}
	return updateScheduledReports{}, nil
}

func (updateScheduledReports) Name() string { return "update_scheduled_reports" }

// Filter: an error-free report with a form, a year and a month or week, not
// processed before.
func (t updateScheduledReports) Filter(env *Env, c *Change) bool {
	doc := c.Doc
	form, _ := doc["form"].(string)
	if doc["type"] != "data_record" || form == "" || hasErrors(doc) {
		return false
	}
	fields := jsv.Map(doc["fields"])
	if !jsv.Truthy(fields["year"]) {
		return false
	}
	if _, _, ok := reportPeriod(fields); !ok {
		return false
	}
	return !c.HasRun(t.Name())
}

// hasErrors reports whether doc.errors is set and not an empty array.
func hasErrors(doc Doc) bool {
	e, ok := doc["errors"]
	if !ok || e == nil {
		return false
	}
	if list, isList := e.([]any); isList {
		return len(list) > 0
	}
	return true
}

// reportPeriod is a report's period: ("week", week || week_number) when
// either is set (week wins over month), else ("month", month || month_num).
// The values keep their JSON type (2 and "2" differ), as the reference's
// view keys do.
func reportPeriod(fields map[string]any) (kind string, value any, ok bool) {
	if v := jsOr(fields["week"], fields["week_number"]); jsv.Truthy(v) {
		return "week", v, true
	}
	if v := jsOr(fields["month"], fields["month_num"]); jsv.Truthy(v) {
		return "month", v, true
	}
	return "", nil, false
}

// jsOr is JavaScript's a || b.
func jsOr(a, b any) any {
	if jsv.Truthy(a) {
		return a
	}
	return b
}

// isLeafPlace reports whether contact c is of a leaf place type.
func isLeafPlace(s *config.Settings, c Doc) bool {
	if c == nil || !s.ContactTypes.Configured() {
		return false
	}
	typ := config.TypeOf(c)
	for _, leaf := range s.ContactTypes.LeafPlaceTypes() {
		if typ == leaf {
			return true
		}
	}
	return false
}

func (t updateScheduledReports) Run(ctx context.Context, env *Env, c *Change) (bool, error) {
	doc := c.Doc
	facility := jsv.Map(jsv.Map(doc["contact"])["parent"])
	if !isLeafPlace(env.Settings(), facility) {
		return false, nil
	}
	facilityID, _ := facility["_id"].(string)
	if facilityID == "" {
		return false, nil
	}
	form, _ := doc["form"].(string)
	fields := jsv.Map(doc["fields"])
	kind, period, _ := reportPeriod(fields)
	stored, err := reportsByFormAndParent(ctx, env, form, facilityID)
	if err != nil {
		return false, err
	}
	dups := samePeriod(stored, fields["year"], kind, period)
	if len(dups) == 0 {
		return false, nil
	}
	id := jsv.String(doc["_id"])
	var doomed []Doc
	for _, r := range dups {
		if jsv.String(r["_id"]) != id {
			r["_deleted"] = true
			doomed = append(doomed, r)
		}
	}
	if len(doomed) == 0 {
		return true, nil
	}
	if err := deleteReports(ctx, env, doomed); err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		env.Log.Error().Str("doc_id", c.ID).Err(err).Msg("update_scheduled_reports: could not delete the duplicate reports")
		return false, nil
	}
	ids := make([]string, len(doomed))
	for i, r := range doomed {
		ids[i] = jsv.String(r["_id"])
	}
	env.Log.Info().Str("doc_id", c.ID).Strs("deleted", ids).Msg("update_scheduled_reports: deleted duplicate periodic reports")
	return true, nil
}

// samePeriod keeps the stored reports of the same year and period (JSON
// equality, same kind: a week 2 is not a month 2) that have a stored
// contact.parent and a reported_date.
func samePeriod(stored []Doc, year any, kind string, period any) []Doc {
	var out []Doc
	for _, r := range stored {
		if r["type"] != "data_record" || r["reported_date"] == nil {
			continue
		}
		if p, _ := jsv.Get(r, "contact.parent._id"); p == nil {
			continue
		}
		f := jsv.Map(r["fields"])
		k, v, ok := reportPeriod(f)
		if !ok || k != kind || !reflect.DeepEqual(v, period) || !reflect.DeepEqual(f["year"], year) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// deleteReports saves the tombstones in one bulk write. Per-doc failures
// (e.g. a report changed meanwhile) are logged; the call failing is an error.
func deleteReports(ctx context.Context, env *Env, docs []Doc) error {
	res, err := env.Store.BulkDocs(ctx, docs)
	if err != nil {
		return err
	}
	for _, r := range res {
		if r.Err != nil {
			env.Log.Warn().Str("doc_id", r.ID).Err(r.Err).Msg("update_scheduled_reports: duplicate report not deleted")
		}
	}
	return nil
}
