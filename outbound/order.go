package outbound

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
)

// Pushes run "in key order": the order of the keys of settings.outbound as
// the config author wrote them (JavaScript's Object.keys order). A Go map
// loses it, so the daemon computes it with KeyOrder from the raw JSON of the
// settings and passes it to Parse; without it, names are sorted.

// KeyOrder returns the keys of the `outbound` member of settingsJSON, the
// raw JSON of the settings object (app_settings), in JavaScript's
// Object.keys order: keys that are array indices first in numeric order,
// then the others where they first appear (a repeated key keeps its first
// place, as with JSON.parse; a repeated `outbound` member: the last one
// counts). nil when there is no `outbound` object.
func KeyOrder(settingsJSON []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(settingsJSON))
	var keys []string
	err := walkObject(dec, func(key string) error {
		if key != "outbound" {
			return skipValue(dec)
		}
		keys = nil
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); !ok || d != '{' {
			if ok && (d == '[') {
				return skipRest(dec)
			}
			return nil // a scalar: not an object
		}
		seen := map[string]bool{}
		keys = []string{}
		for dec.More() {
			t, err := dec.Token()
			if err != nil {
				return err
			}
			k, _ := t.(string)
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
			if err := skipValue(dec); err != nil {
				return err
			}
		}
		_, err = dec.Token() // '}'
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("settings JSON: %w", err)
	}
	return jsObjectKeys(keys), nil
}

// jsObjectKeys orders insertion-ordered keys as a JavaScript object lists
// them: array-index keys first, ascending, then the rest as inserted.
func jsObjectKeys(keys []string) []string {
	if keys == nil {
		return nil
	}
	out := make([]string, len(keys))
	copy(out, keys)
	sort.SliceStable(out, func(i, j int) bool {
		a, ai := arrayIndex(out[i])
		b, bi := arrayIndex(out[j])
		if ai && bi {
			return a < b
		}
		return ai && !bi
	})
	return out
}

// walkObject reads one JSON object from dec, calling member for each key
// with the decoder positioned at the key's value, which member must consume.
func walkObject(dec *json.Decoder, member func(key string) error) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("not a JSON object")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		k, _ := t.(string)
		if err := member(k); err != nil {
			return err
		}
	}
	_, err = dec.Token()
	return err
}

func skipValue(dec *json.Decoder) error {
	var raw json.RawMessage
	return dec.Decode(&raw)
}

// skipRest consumes the rest of an array or object whose opening delimiter
// was just read.
func skipRest(dec *json.Decoder) error {
	for dec.More() {
		if err := skipValue(dec); err != nil {
			return err
		}
	}
	_, err := dec.Token()
	return err
}

// settingsMember returns the raw `settings` member of a settings doc.
// SettingsMember returns the raw JSON of the `settings` member of the
// settings doc docJSON.
func SettingsMember(docJSON []byte) (json.RawMessage, error) {
	var doc struct {
		Settings json.RawMessage `json:"settings"`
	}
	if err := json.Unmarshal(docJSON, &doc); err != nil {
		return nil, err
	}
	if len(doc.Settings) == 0 {
		return nil, errors.New("the settings doc has no settings object")
	}
	return doc.Settings, nil
}
