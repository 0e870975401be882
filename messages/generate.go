package messages

import (
	cryptorand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"

	"sentinel-go/config"
	"sentinel-go/jsv"
	"sentinel-go/templates"
)

// Generator makes outgoing messages for one change: the settings and
// translations in force, the processing time and the process-wide duplicate
// counter.
type Generator struct {
	Settings     *config.Settings
	Translations config.Translations
	Location     *time.Location
	Now          time.Time
	Dups         *Duplicates
	// Rand is the source of the message uuids' random bytes; nil means
	// crypto/rand (tests give a seeded one to draw the same uuids again).
	Rand io.Reader
}

// Spec is a message config entry: `translation_key` or legacy `message`
// (string, or [{locale, content}]) / `messages`, and a `recipient`.
type Spec struct {
	TranslationKey string
	Message        any
	Recipient      any
}

// SpecOf reads a messages[] / schedule message config entry.
func SpecOf(entry map[string]any) Spec {
	s := Spec{Recipient: entry["recipient"]}
	s.TranslationKey, _ = entry["translation_key"].(string)
	if m, ok := entry["message"]; ok {
		s.Message = m
	} else if m, ok := entry["messages"]; ok {
		s.Message = m
	}
	return s
}

// Locale is the message locale: doc.locale, doc.sms_message.locale,
// locale_outgoing, locale, else "en".
func (g *Generator) Locale(doc map[string]any) string {
	if l, _ := doc["locale"].(string); l != "" {
		return l
	}
	if l, _ := jsv.Get(doc, "sms_message.locale"); jsv.Truthy(l) {
		if s, ok := l.(string); ok {
			return s
		}
	}
	return g.Settings.LocaleOutgoing()
}

// Text returns the unrendered text of spec in locale.
func (g *Generator) Text(spec Spec, locale string) string {
	if spec.TranslationKey != "" {
		return g.Translations.Lookup(locale, spec.TranslationKey)
	}
	switch m := spec.Message.(type) {
	case string:
		return m // as is: only translations and array contents are trimmed
	case []any:
		var first string
		for i, e := range m {
			em := jsv.Map(e)
			content, _ := em["content"].(string)
			if i == 0 {
				first = content
			}
			if em["locale"] == locale {
				return strings.TrimSpace(content)
			}
		}
		return strings.TrimSpace(first)
	}
	return ""
}

// RenderOptions are the template options for a message in locale.
func (g *Generator) RenderOptions(locale string) templates.Options {
	return templates.Options{
		DateFormat: g.Settings.DateFormat(), DateTimeFormat: g.Settings.ReportedDateFormat(),
		Locale: locale, DefaultCountryCode: g.Settings.DefaultCountryCode(), Location: g.Location,
	}
}

// Render renders text over the context of doc and extra.
func (g *Generator) Render(doc map[string]any, text string, extra map[string]any) (string, error) {
	return templates.Render(text, Layers(doc, extra), g.RenderOptions(g.Locale(doc)))
}

// AddOptions tune Add.
type AddOptions struct {
	// Unique skips the task when one whose first message has the same `to`
	// and text exists (muting).
	Unique bool
	// ReportOnly renders the text with the report alone as context (layer 5
	// of messages.md §4), as the validation reply is rendered a second time.
	ReportOnly bool
}

// Added says what Add did.
type Added struct {
	Task map[string]any // nil when no task was added
	// Text is the message's text, before truncation; "" when the message got
	// none (messages.errors.message.empty).
	Text string
	// Source is the text before rendering (the lookup result), and Rendered
	// the rendered text even when the message got none (the translation key
	// itself): rejection errors carry them (transitions README).
	Source, Rendered string
	To               string
}

// Add generates a message from spec for doc and appends it to doc.tasks
// (messages.md §3). A template or config failure adds a `parse_error` to the
// doc and no task (doc.tasks is still created), as the reference does; it is
// also returned.
func (g *Generator) Add(doc map[string]any, spec Spec, extra map[string]any, opts AddOptions) (Added, error) {
	layers := Layers(doc, extra)
	if opts.ReportOnly {
		layers = docLayers(doc)
	}
	msg, src, out, err := g.message(doc, spec, layers)
	if err != nil {
		key := spec.TranslationKey
		if key == "" {
			key = "undefined" // the reference prints JavaScript's undefined key
		}
		AddError(doc, "parse_error", fmt.Sprintf("%v: %s", err, key))
		if _, ok := doc["tasks"]; !ok {
			doc["tasks"] = []any{}
		}
		return Added{Source: src}, err
	}
	to, _ := msg["to"].(string)
	rendered, _ := msg["original_message"].(string)
	if rendered == "" {
		rendered, _ = msg["message"].(string)
	}
	added := Added{Text: rendered, Source: src, Rendered: out, To: to}
	if opts.Unique && hasTask(doc, to, rendered) {
		return added, nil
	}
	state := StatePending
	from := jsv.String(doc["from"])
	if doc["from"] == nil {
		from = ""
	}
	switch {
	case Denied(g.Settings, from):
		state = StateDenied
	case g.seenBefore(msg, to, rendered):
		state = StateDuplicate
	}
	task := map[string]any{"messages": []any{msg}}
	SetState(task, state, nil, "", false, g.Now)
	tasks, _ := doc["tasks"].([]any)
	doc["tasks"] = append(tasks, task)
	added.Task = task
	return added, nil
}

// seenBefore counts msg towards the duplicate limit and says whether it is
// over; a message without text counts too, under (to, no text).
func (g *Generator) seenBefore(msg map[string]any, to, rendered string) bool {
	if _, ok := msg["message"]; !ok {
		return g.Dups.SeenTextless(to, g.Settings.DuplicateLimit(), g.Now)
	}
	return g.Dups.Seen(to, rendered, g.Settings.DuplicateLimit(), g.Now)
}

// Message generates one message {uuid, to, message | error} from spec for
// doc (steps 1–5 of messages.md §3), without adding it anywhere.
func (g *Generator) Message(doc map[string]any, spec Spec, extra map[string]any) (map[string]any, error) {
	msg, _, _, err := g.message(doc, spec, Layers(doc, extra))
	return msg, err
}

// message is Message over the given context layers; it also returns the
// text before and after rendering.
func (g *Generator) message(doc map[string]any, spec Spec, layers []map[string]any) (msg map[string]any, text, rendered string, err error) {
	locale := g.Locale(doc)
	text = g.Text(spec, locale)
	rendered, err = templates.Render(text, layers, g.RenderOptions(locale))
	if err != nil {
		return nil, text, "", err
	}
	to := Recipient(g.Settings, doc, layers, spec.Recipient)
	id, err := g.uuid()
	if err != nil {
		return nil, text, rendered, err
	}
	msg = map[string]any{"uuid": id, "to": to}
	if rendered == "" || (spec.TranslationKey != "" && rendered == spec.TranslationKey) {
		msg["error"] = "messages.errors.message.empty"
		return msg, text, rendered, nil
	}
	if cut, ok := Truncate(rendered, g.Settings.MultipartSMSLimit()); ok {
		msg["original_message"] = rendered
		msg["message"] = cut
	} else {
		msg["message"] = rendered
	}
	return msg, text, rendered, nil
}

// uuid is a new version 7 uuid (RFC 9562), as the reference writes: Now's
// unix milliseconds, then 74 random bits drawn from Rand (crypto/rand when
// nil). It is built here rather than with uuid.NewV7 so that a seeded Rand
// and a fixed Now give the same uuid again, and no process-wide sequence
// counter is needed: the random bits alone keep uuids of one millisecond
// apart.
func (g *Generator) uuid() (string, error) {
	var u uuid.UUID
	r := g.Rand
	if r == nil {
		r = cryptorand.Reader
	}
	if _, err := io.ReadFull(r, u[6:]); err != nil {
		return "", fmt.Errorf("message uuid: %w", err)
	}
	now := g.Now
	if now.IsZero() {
		now = time.Now()
	}
	ms := uint64(now.UnixMilli())
	for i := 0; i < 6; i++ {
		u[i] = byte(ms >> (40 - 8*i))
	}
	u[6] = u[6]&0x0f | 0x70
	u[8] = u[8]&0x3f | 0x80
	return u.String(), nil
}

func hasTask(doc map[string]any, to, text string) bool {
	for _, t := range jsv.Slice(doc["tasks"]) {
		msgs := jsv.Slice(jsv.Map(t)["messages"])
		if len(msgs) == 0 {
			continue
		}
		m := jsv.Map(msgs[0])
		if m["to"] == to && m["message"] == text {
			return true
		}
	}
	return false
}

// AddError appends {code, message} to doc.errors unless an error with that
// code is already there (messages.md §8).
func AddError(doc map[string]any, code, message string) {
	errs, _ := doc["errors"].([]any)
	for _, e := range errs {
		if m := jsv.Map(e); m != nil && m["code"] == code {
			return
		}
	}
	doc["errors"] = append(errs, map[string]any{"code": code, "message": message})
}

// ErrNoText is returned when a message config has no text at all.
var ErrNoText = errors.New("message has no text")
