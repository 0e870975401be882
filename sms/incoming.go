package sms

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"sentinel-go/couch"
	"sentinel-go/phone"
	"sentinel-go/smsparse"
)

// Incoming is one received SMS, whatever the gateway.
type Incoming struct {
	// ID is the gateway's id of the SMS, stored as sms_message.gateway_ref.
	ID string
	// From is the sender as received.
	From string
	// Content is the text.
	Content string
	// SentAt is the gateway's sent time (number, ≥13-digit string or date
	// string); nil when unknown: the receipt time is used.
	SentAt any
	// Locale is the sender's locale when the gateway knows it.
	Locale string
}

// valid reports whether the SMS has the fields every gateway must send.
func (in Incoming) valid() bool {
	return strings.TrimSpace(in.ID) != "" && strings.TrimSpace(in.From) != "" && in.Content != ""
}

// recordID derives the record's _id from the gateway id, so that a message
// re-sent concurrently with its first copy loses the write race (409)
// instead of creating a second record. It has the shape of a UUID.
func recordID(gatewayRef string) string {
	sum := sha256.Sum256([]byte("sentinel-go/sms:" + gatewayRef))
	u, _ := uuid.FromBytes(sum[:16])
	return u.String()
}

// buildRecord turns in into the data_record of spec §1.
func buildRecord(in Incoming, sn *snapshot, opts *Options) couch.Doc {
	s := sn.settings
	now := opts.Now()
	reported := float64(now.UnixMilli())
	if in.SentAt != nil {
		if ms, ok := smsparse.ReportedDate(in.SentAt, opts.Location); ok {
			reported = ms
		}
	}
	locale := in.Locale
	if locale == "" {
		locale = s.Locale()
	}
	res := smsparse.Parse(in.Content, sn.forms, smsparse.Options{
		Locale:             locale,
		DefaultCountryCode: s.DefaultCountryCode(),
		PhoneValidation:    s.String("phone_validation", ""),
		FormsOnlyMode:      s.Bool("forms_only_mode", false),
		Location:           opts.Location,
	})
	from := in.From
	if n, ok := phone.Normalize(in.From, s.DefaultCountryCode(), s.String("phone_validation", "")); ok {
		from = n
	}
	smsMsg := map[string]any{
		"type":        "sms_message",
		"message":     in.Content,
		"from":        in.From,
		"gateway_ref": in.ID,
	}
	if res.Form != "" {
		smsMsg["form"] = res.Form
	}
	if in.Locale != "" {
		smsMsg["locale"] = in.Locale
	}
	if in.SentAt != nil {
		smsMsg["reported_date"] = in.SentAt
	}
	errs := make([]any, 0, len(res.Errors))
	for _, e := range res.Errors {
		errs = append(errs, e)
	}
	fields := res.Fields
	if fields == nil {
		fields = map[string]any{}
	}
	doc := couch.Doc{
		"_id":           recordID(in.ID),
		"type":          "data_record",
		"from":          from,
		"fields":        fields,
		"errors":        errs,
		"tasks":         []any{},
		"reported_date": reported,
		"sms_message":   smsMsg,
	}
	if res.Form != "" {
		doc["form"] = res.Form
	}
	if res.Refid != "" {
		doc["refid"] = res.Refid
	}
	return doc
}

// saveIncoming stores the records of msgs that are complete and not already
// known by their gateway id (spec §4.1, §8.3). It returns how many were
// saved. Transitions are not run here: the daemon's feed runs them on the
// new record like on any other doc.
func (s *Service) saveIncoming(ctx context.Context, msgs []Incoming) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	sn, err := s.settings(ctx)
	if err != nil {
		return 0, err
	}
	seen := map[string]bool{}
	var docs []couch.Doc
	var refs []string
	for _, in := range msgs {
		if !in.valid() {
			s.log.Warn().Str("gateway_ref", in.ID).Msg("Dropped an incoming SMS missing id, from or content")
			continue
		}
		if seen[in.ID] {
			continue
		}
		seen[in.ID] = true
		known, err := s.knownGatewayRef(ctx, in.ID)
		if err != nil {
			return 0, err
		}
		if known {
			s.log.Info().Str("gateway_ref", in.ID).Msg("Dropped an incoming SMS already received")
			continue
		}
		docs = append(docs, buildRecord(in, sn, &s.opts))
		refs = append(refs, in.ID)
	}
	if len(docs) == 0 {
		return 0, nil
	}
	res, err := s.db.BulkDocs(ctx, docs)
	if err != nil {
		return 0, fmt.Errorf("save incoming SMS: %w", err)
	}
	saved := 0
	for i, r := range res {
		switch {
		case r.Err == nil:
			saved++
			s.log.Info().Str("doc_id", r.ID).Str("gateway_ref", refs[i]).Msg("Saved incoming SMS")
		case errors.Is(r.Err, couch.ErrConflict):
			// The same gateway id saved concurrently: a duplicate.
		default:
			return saved, fmt.Errorf("save incoming SMS: %w", r.Err)
		}
	}
	return saved, nil
}
