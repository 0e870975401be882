package purging

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf16"

	"sentinel-go/jsv"
)

// RoleSet is the sorted, deduplicated roles of some offline users, and the
// hash that names its purge database.
type RoleSet struct {
	Roles []string
	Hash  string
}

// onlineRoles never make a user offline.
var onlineRoles = map[string]bool{"_admin": true, "admin": true, "mm-online": true}

// IsOffline reports whether a `_users` doc is an offline user (jobs.md
// §1.2): a non-empty roles array, no admin or online role, and either no
// role configured in settings.roles or one configured offline.
func IsOffline(user map[string]any, rolesSetting map[string]any) bool {
	roles := jsv.Slice(user["roles"])
	if len(roles) == 0 {
		return false
	}
	configured, offline := false, false
	for _, r := range roles {
		name, ok := r.(string)
		if !ok {
			continue
		}
		if onlineRoles[name] {
			return false
		}
		if conf, ok := rolesSetting[name]; ok {
			configured = true
			if jsv.Truthy(jsv.Map(conf)["offline"]) {
				offline = true
			}
		}
	}
	return !configured || offline
}

// NewRoleSet sorts (JavaScript's default sort: UTF-16 code units) and
// deduplicates roles and hashes them: the lower-case hex MD5 of their
// compact JSON, as JSON.stringify writes it.
func NewRoleSet(roles []string) RoleSet {
	rs := slices.Clone(roles)
	slices.SortFunc(rs, compareUTF16)
	rs = slices.Compact(rs)
	return RoleSet{Roles: rs, Hash: hashRoles(rs)}
}

func compareUTF16(a, b string) int {
	return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
}

func hashRoles(roles []string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(roles) // a []string always encodes
	s := strings.TrimSuffix(buf.String(), "\n")
	// JSON.stringify leaves U+2028 and U+2029 as they are; Go escapes them.
	s = strings.NewReplacer(`\u2028`, "\u2028", `\u2029`, "\u2029").Replace(s)
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// RoleSets returns the distinct role sets of the offline users, in order of
// first appearance.
func RoleSets(users []map[string]any, rolesSetting map[string]any) []RoleSet {
	var out []RoleSet
	seen := map[string]bool{}
	for _, u := range users {
		if !IsOffline(u, rolesSetting) {
			continue
		}
		var names []string
		for _, r := range jsv.Slice(u["roles"]) {
			if s, ok := r.(string); ok {
				names = append(names, s)
			}
		}
		if len(names) == 0 {
			continue
		}
		rs := NewRoleSet(names)
		if !seen[rs.Hash] {
			seen[rs.Hash] = true
			out = append(out, rs)
		}
	}
	return out
}
