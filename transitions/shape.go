package transitions

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"sentinel-go/config"
	"sentinel-go/jsexpr"
	"sentinel-go/schedule"
	"sentinel-go/schedule/recur"
)

// This file is the one table of the shapes of the app_settings keys the spec
// defines (type, and format where the spec gives one), and the walk that
// checks a config against it for `sentinel check-config`. The daemon's
// loaders stay lenient where the reference is (a wrong offset skips its
// message, an unknown trigger its event); check-config calls every such
// key an error, because a wrong shape silently does nothing.
//
// Reminders (schedule/jobs.ParseReminders) and the purge and archive jobs
// check their own configs.

// shapeType is a bit set of the JSON types a key accepts.
type shapeType uint8

const (
	tString shapeType = 1 << iota
	tNumber
	tBool
	tObject
	tArray
)

// shape is what one key accepts: some JSON types and, for values of those
// types, a format check returning what is wrong ("" when nothing).
type shape struct {
	types  shapeType
	format func(v any) string
}

// shapeRules maps path patterns to shapes. A pattern is a JSON path where
// `[]` stands for any array index and `*` for any object key. A key whose
// pattern is not listed, and is no prefix of one, is not checked (CHT
// settings hold many keys for the web app that Sentinel never reads).
var shapeRules = buildShapeRules()

// shapePrefixes holds every listed pattern and each of its prefixes, so that
// the walk only descends where a rule may apply.
var shapePrefixes = func() map[string]bool {
	out := map[string]bool{}
	for p := range shapeRules {
		for i := range p {
			if p[i] == '.' || p[i] == '[' {
				out[p[:i]] = true
			}
		}
		out[p] = true
	}
	return out
}()

func buildShapeRules() map[string]shape {
	r := map[string]shape{
		// Top-level settings (feed.md §2, messages.md, sms.md).
		"transitions":                      {types: tObject},
		"locale":                           {types: tString},
		"locale_outgoing":                  {types: tString},
		"date_format":                      {types: tString},
		"reported_date_format":             {types: tString},
		"default_country_code":             {types: tNumber | tString, format: intLike(0, 999)},
		"gateway_number":                   {types: tString},
		"forms_only_mode":                  {types: tBool},
		"multipart_sms_limit":              {types: tNumber | tString, format: intLike(1, math.MaxInt32)},
		"schedule_morning_hours":           {types: tNumber | tString, format: intLike(0, 23)},
		"schedule_morning_minutes":         {types: tNumber | tString, format: intLike(0, 59)},
		"schedule_evening_hours":           {types: tNumber | tString, format: intLike(0, 23)},
		"schedule_evening_minutes":         {types: tNumber | tString, format: intLike(0, 59)},
		"synthetic_date":                   {types: tString, format: syntheticDate},
		"outgoing_deny_list":               {types: tString | tArray},
		"outgoing_deny_list[]":             {types: tString},
		"outgoing_deny_shorter_than":       {types: tNumber | tString, format: intLike(math.MinInt32, math.MaxInt32)},
		"outgoing_deny_with_alphas":        {types: tBool},
		"outgoing_phone_replace":           {types: tObject},
		"outgoing_phone_replace.match":     {types: tString},
		"outgoing_phone_replace.replace":   {types: tString},
		"outgoing_phone_filters":           {types: tArray},
		"outgoing_phone_filters[]":         {types: tObject},
		"outgoing_phone_filters[].match":   {types: tString},
		"outgoing_phone_filters[].replace": {types: tString},
		"sms":                              {types: tObject},
		"sms.duplicate_limit":              {types: tNumber | tString, format: intLike(math.MinInt32, math.MaxInt32)},
		"sms.default_to_sender":            {types: tBool},
		"sms.clear_failing_schedules":      {types: tBool},
		"sms.outgoing_service":             {types: tString, format: oneOf("medic-gateway", "rapidpro", "africas-talking")},
		"sms.reply_to":                     {types: tString},
		"forms":                            {types: tObject},
		"forms.*":                          {types: tObject},
		"forms.*.public_form":              {types: tBool},
		"contact_types":                    {types: tArray},
		"contact_types[]":                  {types: tObject},
		"contact_types[].id":               {types: tString, format: nonEmpty},
		"contact_types[].parents":          {types: tArray},
		"contact_types[].parents[]":        {types: tString},
		"contact_types[].person":           {types: tBool},
		"token_login":                      {types: tObject},
		"token_login.enabled":              {types: tBool},
		"app_url":                          {types: tString},

		// registration (transitions/registration.md).
		"registrations":                      {types: tArray},
		"registrations[]":                    {types: tObject},
		"registrations[].form":               {types: tString, format: nonEmpty},
		"registrations[].events":             {types: tArray},
		"registrations[].events[]":           {types: tObject},
		"registrations[].events[].name":      {types: tString, format: oneOf("on_create")},
		"registrations[].events[].trigger":   {types: tString, format: oneOf(sortedKeys(knownTriggers)...)},
		"registrations[].events[].params":    {types: tString | tObject | tArray},
		"registrations[].events[].bool_expr": {types: tString, format: jsExpression},

		// accept_patient_reports, accept_case_reports, self_report, update_clinics.
		"patient_reports":                      {types: tArray},
		"patient_reports[]":                    {types: tObject},
		"patient_reports[].form":               {types: tString, format: nonEmpty},
		"patient_reports[].silence_type":       {types: tString | tArray},
		"patient_reports[].silence_type[]":     {types: tString},
		"patient_reports[].silence_for":        {types: tString, format: durationOrEmpty},
		"accept_case_reports":                  {types: tArray},
		"accept_case_reports[]":                {types: tObject},
		"accept_case_reports[].form":           {types: tString, format: nonEmpty},
		"accept_case_reports[].silence_type":   {types: tString | tArray},
		"accept_case_reports[].silence_type[]": {types: tString},
		"accept_case_reports[].silence_for":    {types: tString, format: durationOrEmpty},
		"self_report":                          {types: tArray},
		"self_report[]":                        {types: tObject},
		"self_report[].form":                   {types: tString, format: nonEmpty},
		"update_clinics":                       {types: tArray},
		"update_clinics[]":                     {types: tObject},
		"update_clinics[].form":                {types: tString},

		// schedules (schedules.md §1).
		"schedules":                        {types: tArray},
		"schedules[]":                      {types: tObject},
		"schedules[].name":                 {types: tString, format: nonEmpty},
		"schedules[].start_from":           {types: tString | tArray},
		"schedules[].start_from[]":         {types: tString},
		"schedules[].start_mid_group":      {types: tBool},
		"schedules[].translation_key":      {types: tString},
		"schedules[].messages":             {types: tArray},
		"schedules[].messages[]":           {types: tObject},
		"schedules[].messages[].group":     {types: tNumber | tString, format: intLike(math.MinInt32, math.MaxInt32)},
		"schedules[].messages[].offset":    {types: tString, format: duration},
		"schedules[].messages[].send_day":  {types: tString, format: weekday},
		"schedules[].messages[].send_time": {types: tString, format: sendTime},

		// death_reporting, muting, update_notifications, default_responses.
		"death_reporting":                       {types: tObject},
		"death_reporting.mark_deceased_forms":   {types: tArray},
		"death_reporting.mark_deceased_forms[]": {types: tString},
		"death_reporting.undo_deceased_forms":   {types: tArray},
		"death_reporting.undo_deceased_forms[]": {types: tString},
		"death_reporting.date_field":            {types: tString},
		"muting":                                {types: tObject},
		"muting.mute_forms":                     {types: tArray},
		"muting.mute_forms[]":                   {types: tString},
		"muting.unmute_forms":                   {types: tArray},
		"muting.unmute_forms[]":                 {types: tString},
		"notifications":                         {types: tObject},
		"notifications.off_form":                {types: tString},
		"notifications.on_form":                 {types: tString},
		"default_responses":                     {types: tObject},
		"default_responses.start_date":          {types: tString, format: dateOrEmpty},

		// conditional_alerts: an array, or an object whose values are alerts.
		"alerts": {types: tArray | tObject},

		// multi_report_alerts.
		"multi_report_alerts":                         {types: tArray},
		"multi_report_alerts[]":                       {types: tObject},
		"multi_report_alerts[].name":                  {types: tString},
		"multi_report_alerts[].is_report_counted":     {types: tString, format: jsFunction},
		"multi_report_alerts[].num_reports_threshold": {types: tNumber | tString, format: leadingInt(1, mraMaxThreshold)},
		"multi_report_alerts[].time_window_in_days":   {types: tNumber | tString, format: leadingInt(math.MinInt32, math.MaxInt32)},
		"multi_report_alerts[].recipients":            {types: tArray},
		"multi_report_alerts[].recipients[]":          {types: tString, format: jsExpression},
		"multi_report_alerts[].forms":                 {types: tArray},
		"multi_report_alerts[].forms[]":               {types: tString},

		// mark_for_outbound.
		"outbound":                                 {types: tObject},
		"outbound.*":                               {types: tObject},
		"outbound.*.relevant_to":                   {types: tString, format: jsExpression},
		"outbound.*.destination":                   {types: tObject},
		"outbound.*.destination.base_url":          {types: tString, format: nonEmpty},
		"outbound.*.destination.path":              {types: tString},
		"outbound.*.destination.auth":              {types: tObject},
		"outbound.*.destination.auth.type":         {types: tString, format: oneOf("basic", "header", "muso-sih")},
		"outbound.*.destination.auth.username":     {types: tString},
		"outbound.*.destination.auth.password_key": {types: tString},
		"outbound.*.destination.auth.name":         {types: tString},
		"outbound.*.destination.auth.value_key":    {types: tString},
		"outbound.*.destination.auth.path":         {types: tString},
		"outbound.*.mapping":                       {types: tObject},
		"outbound.*.mapping.*":                     {types: tString | tObject},
		"outbound.*.mapping.*.path":                {types: tString},
		"outbound.*.mapping.*.expr":                {types: tString, format: jsExpression},
		"outbound.*.mapping.*.optional":            {types: tBool},
		"outbound.*.cron":                          {types: tString, format: cron},

		// create_user_for_contacts.
		"create_user_for_contacts":                 {types: tObject},
		"create_user_for_contacts.replace_forms":   {types: tArray},
		"create_user_for_contacts.replace_forms[]": {types: tString},
	}
	for _, alerts := range []string{"alerts[]", "alerts.*"} {
		r[alerts] = shape{types: tObject}
		r[alerts+".form"] = shape{types: tString}
		r[alerts+".condition"] = shape{types: tString, format: jsExpression}
		r[alerts+".recipient"] = shape{types: tString}
		addText(r, alerts)
	}
	addText(r, "multi_report_alerts[]")
	// Message lists (replies and rejections) and their entries.
	for _, owner := range []string{"registrations[]", "patient_reports[]", "accept_case_reports[]",
		"self_report[]", "update_clinics[]", "muting", "notifications"} {
		r[owner+".messages"] = shape{types: tArray}
		r[owner+".messages[]"] = shape{types: tObject}
		r[owner+".messages[].event_type"] = shape{types: tString}
		r[owner+".messages[].bool_expr"] = shape{types: tString, format: jsExpression}
		addRecipient(r, owner+".messages[]")
		addText(r, owner+".messages[]")
	}
	addRecipient(r, "schedules[].messages[]")
	addText(r, "schedules[].messages[]")
	// Validations (validations.md §1); rules are checked by the loaders.
	for _, owner := range []string{"registrations[]", "patient_reports[]", "accept_case_reports[]", "muting", "notifications"} {
		v := owner + ".validations"
		r[v] = shape{types: tObject}
		r[v+".join_responses"] = shape{types: tBool}
		r[v+".list"] = shape{types: tArray}
		r[v+".list[]"] = shape{types: tObject}
		r[v+".list[].property"] = shape{types: tString, format: nonEmpty}
		r[v+".list[].rule"] = shape{types: tString}
		addText(r, v+".list[]")
	}
	return r
}

// addText adds the keys of a message text (messages.md §3): a
// translation_key, or a legacy `message`, a string or [{locale, content}].
func addText(r map[string]shape, owner string) {
	r[owner+".translation_key"] = shape{types: tString}
	r[owner+".message"] = shape{types: tString | tArray}
	r[owner+".message[]"] = shape{types: tObject}
	r[owner+".message[].locale"] = shape{types: tString}
	r[owner+".message[].content"] = shape{types: tString}
}

// addRecipient adds a `recipient`: a string, or (5.1+) an array of them
// (messages.md §5). Its entries name fields, paths and kinds that no table
// can close (a field of the report is a recipient), so only the type is
// checked.
func addRecipient(r map[string]shape, owner string) {
	r[owner+".recipient"] = shape{types: tString | tArray}
	r[owner+".recipient[]"] = shape{types: tString}
}

// checkShapes walks raw app_settings against shapeRules and returns an error
// for each key of the wrong type or format. A key of the wrong type is not
// walked into.
func checkShapes(raw map[string]any) []config.Problem {
	var out []config.Problem
	walkShapes(raw, "", "", &out)
	return out
}

func walkShapes(v any, path, pattern string, out *[]config.Problem) {
	if v == nil {
		return // null reads as absent everywhere
	}
	if sh, ok := shapeRules[pattern]; ok {
		if msg := sh.check(v); msg != "" {
			*out = append(*out, config.Errorf(path, "%s", msg))
			return
		}
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			for _, p := range []string{joinPath(pattern, k), joinPath(pattern, "*")} {
				if shapePrefixes[p] {
					walkShapes(e, joinPath(path, k), p, out)
					break
				}
			}
		}
	case []any:
		if p := pattern + "[]"; shapePrefixes[p] {
			for i, e := range x {
				walkShapes(e, fmt.Sprintf("%s[%d]", path, i), p, out)
			}
		}
	}
}

// check returns what is wrong with v, or "".
func (s shape) check(v any) string {
	t := typeOf(v)
	if s.types&t == 0 {
		return fmt.Sprintf("must be %s, got %s", typeNames(s.types), jsonText(v))
	}
	if s.format != nil {
		return s.format(v)
	}
	return ""
}

func typeOf(v any) shapeType {
	switch v.(type) {
	case string:
		return tString
	case float64:
		return tNumber
	case bool:
		return tBool
	case map[string]any:
		return tObject
	case []any:
		return tArray
	}
	return 0
}

func typeNames(t shapeType) string {
	var names []string
	for _, n := range []struct {
		t    shapeType
		name string
	}{{tString, "a string"}, {tNumber, "a number"}, {tBool, "a boolean"}, {tObject, "an object"}, {tArray, "an array"}} {
		if t&n.t != 0 {
			names = append(names, n.name)
		}
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Formats. Each reads the value with the parser the daemon uses, so that
// check-config accepts exactly what the daemon understands.

func nonEmpty(v any) string {
	if s, ok := v.(string); ok && strings.TrimSpace(s) == "" {
		return "must not be empty"
	}
	return ""
}

// intLike accepts an integer, or a string holding one (config.Settings.Int
// reads both), within [lo, hi].
func intLike(lo, hi int) func(any) string {
	return func(v any) string {
		var n int
		switch x := v.(type) {
		case float64:
			if x != math.Trunc(x) {
				return fmt.Sprintf("must be an integer, got %s", jsonText(v))
			}
			n = int(x)
		case string:
			i, err := strconv.Atoi(strings.TrimSpace(x))
			if err != nil {
				return fmt.Sprintf("must be an integer, got %s", jsonText(v))
			}
			n = i
		}
		if n < lo || n > hi {
			return fmt.Sprintf("must be between %d and %d, got %s", lo, hi, jsonText(v))
		}
		return ""
	}
}

// leadingInt accepts what JavaScript's parseInt reads as an integer in [lo,
// hi], as multi_report_alerts does.
func leadingInt(lo, hi int) func(any) string {
	return func(v any) string {
		n, ok := parseLeadingInt(v)
		if !ok {
			return fmt.Sprintf("must be an integer, got %s", jsonText(v))
		}
		if n < lo || n > hi {
			return fmt.Sprintf("must be between %d and %d, got %s", lo, hi, jsonText(v))
		}
		return ""
	}
}

func oneOf(values ...string) func(any) string {
	return func(v any) string {
		if s, _ := v.(string); !slices.Contains(values, s) {
			return fmt.Sprintf("%s is not one of %s", jsonText(v), strings.Join(quoteAll(values), ", "))
		}
		return ""
	}
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// duration is "<integer> <unit>" (transitions/README.md "Durations").
func duration(v any) string {
	if _, ok := schedule.ParseDuration(v.(string)); !ok {
		return fmt.Sprintf(`%s is not a duration such as "4 weeks" (<integer> <unit>, the unit one of second(s), minute(s), hour(s), day(s), week(s), month(s), year(s))`, jsonText(v))
	}
	return ""
}

// durationOrEmpty: an empty silence_for means "not set".
func durationOrEmpty(v any) string {
	if v == "" {
		return ""
	}
	return duration(v)
}

// weekday is a send_day: an English weekday name, any case; empty is unset.
func weekday(v any) string {
	if s := v.(string); s != "" {
		if _, ok := schedule.ParseWeekday(s); !ok {
			return fmt.Sprintf("%s is not an English weekday name such as \"monday\"", jsonText(v))
		}
	}
	return ""
}

// sendTime is "HH:mm" with an optional UTC offset; empty is unset. The
// daemon rolls an hour or minute out of range over into the next day: a
// mistake, so an error here.
func sendTime(v any) string {
	s := v.(string)
	if s == "" {
		return ""
	}
	st, ok := schedule.ParseSendTime(s)
	off := st.Offset
	if off < 0 {
		off = -off
	}
	if !ok || st.Hour > 23 || st.Minute > 59 || off/3600 > 14 || off%3600/60 > 59 {
		return fmt.Sprintf(`%s is not a time of day "HH:mm" (00:00 to 23:59), optionally with a UTC offset such as "09:00 +03:00"`, jsonText(v))
	}
	return ""
}

// dateOrEmpty is "YYYY-MM-DD" (default_responses.start_date); empty is unset.
func dateOrEmpty(v any) string {
	if s := v.(string); s != "" {
		if _, err := time.Parse("2006-01-02", s); err != nil {
			return fmt.Sprintf("%s is not a date \"YYYY-MM-DD\"", jsonText(v))
		}
	}
	return ""
}

var syntheticDateRE = regexp.MustCompile(`^\d{8}(\d{2}(\d{2})?)?$`)

// syntheticDate is "YYYYMMDD[HH[MM]]" (schedules.md §9); empty is unset.
func syntheticDate(v any) string {
	s := strings.TrimSpace(v.(string))
	if s == "" {
		return ""
	}
	if _, ok := config.NewSettings(map[string]any{"synthetic_date": s}).SyntheticDate(time.UTC); !ok || !syntheticDateRE.MatchString(s) {
		return fmt.Sprintf("%s is not a date \"YYYYMMDD\", \"YYYYMMDDHH\" or \"YYYYMMDDHHMM\"", jsonText(v))
	}
	return ""
}

// cron is a 5-field cron expression, as the outbound job reads it.
func cron(v any) string {
	if _, err := recur.ParseCron(v.(string)); err != nil {
		return err.Error()
	}
	return ""
}

// jsExpression is config JavaScript run as a script; empty means true.
func jsExpression(v any) string {
	if _, err := jsexpr.Compile("", v.(string)); err != nil {
		return jsexpr.Describe(err)
	}
	return ""
}

// jsFunction is the source of one function expression.
func jsFunction(v any) string {
	if _, err := jsexpr.CompileFunction("", v.(string)); err != nil {
		return jsexpr.Describe(err)
	}
	return ""
}
