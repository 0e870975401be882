package transitions

import (
	"context"
	"time"

	"sentinel-go/config"
	"sentinel-go/jsv"
	"sentinel-go/messages"
	"sentinel-go/phone"
)

// defaultResponses auto-replies to empty, unknown-form and free-text SMS.
type defaultResponses struct {
	start    time.Time
	hasStart bool
}

func newDefaultResponses(s *config.Settings, path string) (Transition, []config.Problem) {
	t := &defaultResponses{}
	raw, _ := s.Get("default_responses.start_date").(string)
	if raw == "" {
		return t, []config.Problem{config.Warnf("default_responses.start_date", "no start_date: default_responses never replies")}
	}
	d, err := time.ParseInLocation("2006-01-02", raw, time.Local)
	if err != nil {
		return t, []config.Problem{config.Warnf("default_responses.start_date", "%q is not a YYYY-MM-DD date: default_responses never replies", raw)}
	}
	t.start, t.hasStart = d, true
	return t, nil
}

func (*defaultResponses) Name() string { return "default_responses" }

func (t *defaultResponses) Filter(env *Env, c *Change) bool {
	doc := c.Doc
	if doc["type"] != "data_record" || !jsv.Truthy(doc["from"]) || jsv.Truthy(doc["kujua_message"]) || !t.hasStart {
		return false
	}
	start := time.Date(t.start.Year(), t.start.Month(), t.start.Day(), 0, 0, 0, 0, env.Location)
	rd, ok := doc["reported_date"].(float64)
	if !ok || !time.UnixMilli(int64(rd)).After(start) {
		return false
	}
	if c.HasRun(t.Name()) {
		return false
	}
	s := env.Settings()
	if from, ok := jsv.Get(doc, "sms_message.from"); ok {
		if fs, ok := from.(string); ok {
			if gw := s.String("gateway_number", ""); gw != "" && phone.Same(fs, gw, s.DefaultCountryCode()) {
				return false
			}
		}
	}
	return true
}

func hasErrorCode(doc Doc, code string) bool {
	for _, e := range jsv.Slice(doc["errors"]) {
		if jsv.Map(e)["code"] == code {
			return true
		}
	}
	return false
}

func (t *defaultResponses) Run(_ context.Context, env *Env, c *Change) (bool, error) {
	doc := c.Doc
	key := ""
	_, formIsString := doc["form"].(string)
	switch {
	case hasErrorCode(doc, "sys.empty"):
		key = "empty"
	case jsv.Truthy(env.Settings().Get("forms_only_mode")) && hasErrorCode(doc, "sys.form_not_found"):
		key = "form_not_found"
	case hasErrorCode(doc, "sys.form_not_found") || !formIsString:
		key = "sms_received"
	}
	if key != "" {
		_, _ = env.Generator().Add(doc, messages.Spec{TranslationKey: key, Recipient: "reporting_unit"}, nil, messages.AddOptions{})
	}
	return true, nil
}

// WhyNot says why Filter is false (sentinel explain).
func (t *defaultResponses) WhyNot(env *Env, c *Change) string {
	doc := c.Doc
	switch {
	case doc["type"] != "data_record":
		return whyNotReport(c, t.Name())
	case !jsv.Truthy(doc["from"]):
		return "not an SMS: the report has no `from`"
	case jsv.Truthy(doc["kujua_message"]):
		return "an outgoing message (kujua_message)"
	case !t.hasStart:
		return "default_responses.start_date is missing or invalid"
	case c.HasRun(t.Name()):
		return whyNotReport(c, t.Name())
	}
	if rd, ok := doc["reported_date"].(float64); !ok || !time.UnixMilli(int64(rd)).After(time.Date(t.start.Year(), t.start.Month(), t.start.Day(), 0, 0, 0, 0, env.Location)) {
		return "reported_date is missing or not after default_responses.start_date " + t.start.Format("2006-01-02")
	}
	return "the message comes from the gateway_number itself"
}
