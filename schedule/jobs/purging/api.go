package purging

import (
	"strings"

	"sentinel-go/jsv"
)

// scriptAPI is the part of CHT's script API (chtScriptApi) a synchronous
// purge function can use: v1.hasPermissions and v1.hasAnyPermission
// (cht-script-api docs). permissions is settings.permissions (the default
// when a call passes none) and roles settings.roles: user roles not
// configured there are ignored.
func scriptAPI(permissions, roles map[string]any) map[string]any {
	has := func(args ...any) any {
		perms, userRoles, settings, ok := permArgs(args, permissions)
		if !ok {
			return false
		}
		return hasPermissions(perms, userRoles, settings, roles)
	}
	hasAny := func(args ...any) any {
		if len(args) < 2 {
			return false
		}
		groups, ok := args[0].([]any)
		if !ok || len(groups) == 0 {
			return false
		}
		for _, g := range groups {
			perms, userRoles, settings, ok := permArgs(append([]any{g}, args[1:]...), permissions)
			if ok && hasPermissions(perms, userRoles, settings, roles) {
				return true
			}
		}
		return false
	}
	return map[string]any{"v1": map[string]any{"hasPermissions": has, "hasAnyPermission": hasAny}}
}

// permArgs reads (permissions, userRoles, permissionSettings?): a
// permission name or a non-empty list of them, a list of role names.
func permArgs(args []any, def map[string]any) (perms, userRoles []string, settings map[string]any, ok bool) {
	if len(args) < 2 {
		return nil, nil, nil, false
	}
	switch p := args[0].(type) {
	case string:
		perms = []string{p}
	case []any:
		for _, x := range p {
			s, isStr := x.(string)
			if !isStr {
				return nil, nil, nil, false
			}
			perms = append(perms, s)
		}
	}
	if len(perms) == 0 {
		return nil, nil, nil, false
	}
	rs, isList := args[1].([]any)
	if !isList {
		return nil, nil, nil, false
	}
	for _, r := range rs {
		if s, isStr := r.(string); isStr {
			userRoles = append(userRoles, s)
		}
	}
	settings = def
	if len(args) > 2 && args[2] != nil {
		m, isMap := args[2].(map[string]any)
		if !isMap {
			return nil, nil, nil, false
		}
		settings = m
	}
	return perms, userRoles, settings, settings != nil
}

// hasPermissions: every permission held, every "!permission" not held;
// admins hold them all (so fail only the denied ones).
func hasPermissions(perms, userRoles []string, settings, roles map[string]any) bool {
	admin := false
	for _, r := range userRoles {
		if r == "admin" || r == "_admin" {
			admin = true
		}
	}
	for _, p := range perms {
		name, denied := strings.CutPrefix(p, "!")
		held := admin || holds(name, userRoles, settings, roles)
		if held == denied {
			return false
		}
	}
	return true
}

func holds(perm string, userRoles []string, settings, roles map[string]any) bool {
	allowed := jsv.Slice(settings[perm])
	for _, r := range userRoles {
		if _, known := roles[r]; !known {
			continue
		}
		for _, a := range allowed {
			if a == r {
				return true
			}
		}
	}
	return false
}
