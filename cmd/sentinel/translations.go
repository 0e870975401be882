package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"sentinel-go/config"
)

// readTranslations reads translations for check-config: a directory of
// `messages-*.json` files, each a translation doc as stored in CouchDB
// ({_id, code, generic, custom}), or one JSON file {locale: {key: text}}.
func readTranslations(path string) (config.Translations, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("translations: %w", err)
	}
	if !st.IsDir() {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("translations: %w", err)
		}
		var tr config.Translations
		if err := json.Unmarshal(data, &tr); err != nil {
			return nil, fmt.Errorf("translations: %s is not a JSON object {locale: {key: text}}: %w", path, err)
		}
		return tr, nil
	}
	files, err := filepath.Glob(filepath.Join(path, "messages-*.json"))
	if err != nil {
		return nil, fmt.Errorf("translations: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("translations: no messages-*.json file in %s", path)
	}
	sort.Strings(files)
	var docs []map[string]any
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("translations: %w", err)
		}
		var doc map[string]any
		if err := json.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("translations: %s is not a JSON object: %w", f, err)
		}
		if _, ok := doc["_id"]; !ok {
			// The file name gives the locale, as the doc id would.
			doc["_id"] = filepath.Base(f[:len(f)-len(".json")])
		}
		docs = append(docs, doc)
	}
	return config.ParseTranslations(docs), nil
}
