package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"sentinel-go/config"
	"sentinel-go/couch"
	"sentinel-go/outbound"
	"sentinel-go/transitions"
)

// ReadSettings reads app_settings from the `settings` doc of db as the
// daemon does (with the outbound key order of the raw JSON); tools such as
// `sentinel explain` use it too.
func ReadSettings(ctx context.Context, db *couch.DB) (*config.Settings, error) {
	body, err := db.GetRaw(ctx, "settings")
	if err != nil {
		if errors.Is(err, couch.ErrNotFound) {
			return nil, fmt.Errorf("the settings doc is missing from db %s: %w", db.Name(), err)
		}
		return nil, fmt.Errorf("read settings: %w", err)
	}
	var doc struct {
		Settings map[string]any `json:"settings"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Settings == nil {
		return nil, fmt.Errorf("the settings doc has no settings object")
	}
	s := config.NewSettings(doc.Settings)
	// Key order matters where config authors rely on it (outbound pushes run
	// in the order written): take it from the raw JSON.
	if raw, err := outbound.SettingsMember(body); err == nil {
		s.JSON = raw
		if order, err := outbound.KeyOrder(raw); err == nil {
			s.OutboundOrder = order
		}
	}
	return s, nil
}

// ReadTranslations reads the `messages-*` docs of db as the daemon does.
func ReadTranslations(ctx context.Context, db *couch.DB) (config.Translations, error) {
	rows, err := db.AllDocs(ctx, map[string]any{
		"startkey": "messages-", "endkey": "messages-\ufff0", "include_docs": true})
	if err != nil {
		return nil, fmt.Errorf("read translations: %w", err)
	}
	var docs []map[string]any
	for _, r := range rows {
		if r.Doc != nil {
			docs = append(docs, r.Doc)
		}
	}
	return config.ParseTranslations(docs), nil
}

// LoadConfig reads settings and translations from db and builds the config
// exactly as the daemon does at each (re)load.
func LoadConfig(ctx context.Context, db *couch.DB) (*transitions.Config, error) {
	s, err := ReadSettings(ctx, db)
	if err != nil {
		return nil, err
	}
	tr, err := ReadTranslations(ctx, db)
	if err != nil {
		return nil, err
	}
	return transitions.LoadSettings(s, tr), nil
}
