package outbound

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/robfig/cron/v3"

	"sentinel-go/config"
	"sentinel-go/jsexpr"
	"sentinel-go/jsv"
)

// Config is settings.outbound, checked and compiled at load. It is
// immutable and safe to share.
type Config struct {
	pushes map[string]*Push
	order  []string // key order of settings.outbound as written; nil: sorted
}

// Push is one entry of settings.outbound.
type Push struct {
	Name string
	// relevantTo is nil when the push never applies (missing or blank).
	relevantTo *jsexpr.Program
	// Destination is nil when missing or unusable; unsendable says why.
	Destination *Destination
	// Mapping is sorted by payload key; nil with unsendable set when missing.
	Mapping []Mapping
	// Cron is the `cron` setting ("" when unset); cronSched is nil when
	// invalid, cronErr then says why.
	Cron      string
	cronSched cron.Schedule
	cronErr   error
	// unsendable, when set, is why the push can never be sent as configured
	// (no destination, no mapping…): it is queued instead.
	unsendable string
}

// Destination is where a push goes.
type Destination struct {
	BaseURL string
	Path    string
	// Auth is nil when no `auth` is configured.
	Auth *Auth
}

// Auth is destination.auth.
type Auth struct {
	Type        string // "basic", "header", "muso-sih" (anything else fails at send)
	Username    string // basic, muso-sih
	PasswordKey string // basic, muso-sih: key of the secret
	Name        string // header: must be "authorization" (any case)
	ValueKey    string // header: key of the secret
	Path        string // muso-sih: login path under base_url
}

// Mapping is one entry of `mapping`: payload key (dots nest) ← source.
type Mapping struct {
	Key      string
	Path     string // object path read on {doc}; "" when Expr is used
	expr     *jsexpr.Program
	isUndef  *jsexpr.Program // `(<expr>) === undefined`, nil when expr is not one expression
	Optional bool
	// invalid, when set, makes this entry fail every time (bad config).
	invalid string
}

// Parse reads settings.outbound (raw, as decoded from the settings doc).
// Errors are invalid types and JavaScript syntax errors; everything the
// reference only notices when sending (no destination or mapping, bad cron,
// unknown auth type) is a warning, and such pushes are queued.
//
// order is the key order of settings.outbound as written (KeyOrder); nil
// means sorted names.
func Parse(raw any, order []string) (*Config, []config.Problem) {
	c := &Config{pushes: map[string]*Push{}, order: order}
	if raw == nil {
		return c, nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return c, []config.Problem{config.Errorf("outbound", "must be an object mapping push names to push configs")}
	}
	var problems []config.Problem
	for _, name := range sortedKeys(m) {
		p, ps := parsePush(name, m[name])
		problems = append(problems, ps...)
		if p != nil {
			c.pushes[name] = p
		}
	}
	return c, problems
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func parsePush(name string, v any) (*Push, []config.Problem) {
	path := "outbound." + name
	pm, ok := v.(map[string]any)
	if !ok {
		return nil, []config.Problem{config.Errorf(path, "must be an object with relevant_to, destination and mapping")}
	}
	p := &Push{Name: name}
	var problems []config.Problem

	switch rt := pm["relevant_to"].(type) {
	case nil:
		problems = append(problems, config.Warnf(path+".relevant_to", "no relevant_to: this push never applies"))
	case string:
		if strings.TrimSpace(rt) == "" {
			problems = append(problems, config.Warnf(path+".relevant_to", "empty relevant_to: this push never applies"))
			break
		}
		prog, err := jsexpr.Compile(path+".relevant_to", rt)
		if err != nil {
			problems = append(problems, config.Errorf(path+".relevant_to", "%s", exprError(err)))
			break
		}
		p.relevantTo = prog
	default:
		problems = append(problems, config.Errorf(path+".relevant_to", "must be a JavaScript expression (a string)"))
	}

	var why []string
	if d, dp := parseDestination(path+".destination", pm["destination"]); d != nil {
		p.Destination = d
		problems = append(problems, dp...)
	} else {
		problems = append(problems, dp...)
		why = append(why, "no usable destination")
	}

	switch mm := pm["mapping"].(type) {
	case map[string]any:
		for _, key := range sortedKeys(mm) {
			e, ps := parseMapping(path+".mapping."+key, key, mm[key])
			problems = append(problems, ps...)
			p.Mapping = append(p.Mapping, e)
		}
		if p.Mapping == nil {
			p.Mapping = []Mapping{}
		}
	case nil:
		why = append(why, "no mapping")
		problems = append(problems, config.Warnf(path+".mapping", "no mapping: this push cannot be sent and is queued"))
	default:
		why = append(why, "mapping is not an object")
		problems = append(problems, config.Warnf(path+".mapping", "must be an object: this push cannot be sent and is queued"))
	}
	p.unsendable = strings.Join(why, ", ")

	switch cr := pm["cron"].(type) {
	case nil:
	case string:
		p.Cron = cr
		if strings.TrimSpace(cr) == "" {
			p.Cron = ""
			break
		}
		s, err := ParseCron(cr)
		if err != nil {
			p.cronErr = err
			problems = append(problems, config.Warnf(path+".cron", "%v: this push is always queued", err))
		} else {
			p.cronSched = s
		}
	default:
		p.Cron = fmt.Sprint(cr)
		p.cronErr = fmt.Errorf("cron must be a string")
		problems = append(problems, config.Warnf(path+".cron", "must be a 5-field cron expression (a string): this push is always queued"))
	}
	return p, problems
}

func parseDestination(path string, v any) (*Destination, []config.Problem) {
	if v == nil {
		return nil, []config.Problem{config.Warnf(path, "no destination: this push cannot be sent and is queued")}
	}
	dm, ok := v.(map[string]any)
	if !ok {
		return nil, []config.Problem{config.Warnf(path, "must be an object: this push cannot be sent and is queued")}
	}
	d := &Destination{}
	d.BaseURL, _ = dm["base_url"].(string)
	d.Path, _ = dm["path"].(string)
	var problems []config.Problem
	if strings.TrimSpace(d.BaseURL) == "" {
		return nil, []config.Problem{config.Warnf(path+".base_url", "no base_url: this push cannot be sent and is queued")}
	}
	if _, err := joinURL(d.BaseURL, d.Path); err != nil {
		return nil, []config.Problem{config.Warnf(path, "%v: this push cannot be sent and is queued", err)}
	}
	if av, present := dm["auth"]; present && av != nil {
		am, ok := av.(map[string]any)
		if !ok {
			return nil, []config.Problem{config.Warnf(path+".auth", "must be an object: this push cannot be sent and is queued")}
		}
		a := &Auth{}
		a.Type, _ = am["type"].(string)
		a.Username, _ = am["username"].(string)
		a.PasswordKey, _ = am["password_key"].(string)
		a.Name, _ = am["name"].(string)
		a.ValueKey, _ = am["value_key"].(string)
		a.Path, _ = am["path"].(string)
		switch strings.ToLower(a.Type) {
		case "basic":
			if a.PasswordKey == "" {
				problems = append(problems, config.Warnf(path+".auth.password_key", "basic auth needs a password_key: pushes fail and are queued"))
			}
		case "header":
			if !strings.EqualFold(a.Name, "authorization") {
				problems = append(problems, config.Warnf(path+".auth.name", "only the Authorization header is supported: pushes fail and are queued"))
			}
			if a.ValueKey == "" {
				problems = append(problems, config.Warnf(path+".auth.value_key", "header auth needs a value_key: pushes fail and are queued"))
			}
		case "muso-sih":
			if a.PasswordKey == "" {
				problems = append(problems, config.Warnf(path+".auth.password_key", "muso-sih auth needs a password_key: pushes fail and are queued"))
			}
		default:
			problems = append(problems, config.Warnf(path+".auth.type", "unknown auth type %q (basic, header or muso-sih): pushes fail and are queued", a.Type))
		}
		d.Auth = a
	}
	return d, problems
}

func parseMapping(path, key string, v any) (Mapping, []config.Problem) {
	e := Mapping{Key: key}
	if key == "" || strings.HasPrefix(key, ".") || strings.HasSuffix(key, ".") || strings.Contains(key, "..") {
		e.invalid = fmt.Sprintf("invalid payload key %q", key)
		return e, []config.Problem{config.Warnf(path, "invalid payload key: pushes fail and are queued")}
	}
	switch x := v.(type) {
	case string:
		e.Path = x
	case map[string]any:
		e.Optional = jsv.Truthy(x["optional"])
		if src, ok := x["expr"].(string); ok {
			prog, err := jsexpr.Compile(path+".expr", src)
			if err != nil {
				e.invalid = "invalid expr"
				return e, []config.Problem{config.Errorf(path+".expr", "%s", exprError(err))}
			}
			e.expr = prog
			e.isUndef = undefinedProbe(path+".expr", src)
		} else if p, ok := x["path"].(string); ok {
			e.Path = p
		} else {
			e.invalid = fmt.Sprintf("mapping %q has neither path nor expr", key)
			return e, []config.Problem{config.Warnf(path, "needs a `path` or an `expr` (a string): pushes fail and are queued")}
		}
	default:
		e.invalid = fmt.Sprintf("mapping %q is neither a path nor an object", key)
		return e, []config.Problem{config.Warnf(path, "must be an object path (a string) or {path | expr, optional}: pushes fail and are queued")}
	}
	if e.expr == nil && strings.TrimSpace(e.Path) == "" {
		e.invalid = fmt.Sprintf("mapping %q has an empty path", key)
		return e, []config.Problem{config.Warnf(path, "empty path: pushes fail and are queued")}
	}
	return e, nil
}

// undefinedProbe compiles `(<src>) === undefined` when src is a single
// expression, so that a nil result (undefined or null: the sandbox exports
// both as nil) can be told apart. nil when src is not one expression.
func undefinedProbe(name, src string) *jsexpr.Program {
	s := strings.TrimRight(strings.TrimSpace(src), "; \t\r\n")
	if s == "" {
		return nil
	}
	prog, err := jsexpr.Compile(name, "(\n"+s+"\n) === undefined")
	if err != nil {
		return nil
	}
	return prog
}

func exprError(err error) string { return jsexpr.Describe(err) }

// Empty reports whether no push is configured.
func (c *Config) Empty() bool { return c == nil || len(c.pushes) == 0 }

// Get returns the push named name, nil when not configured.
func (c *Config) Get(name string) *Push {
	if c == nil {
		return nil
	}
	return c.pushes[name]
}

// Names returns the push names in config order (see KeyOrder).
func (c *Config) Names() []string {
	if c == nil {
		return nil
	}
	names := make([]string, 0, len(c.pushes))
	for n := range c.pushes {
		names = append(names, n)
	}
	return OrderNames(names, c.order)
}

// OrderNames sorts names by their position in order; names missing from
// order come last, sorted.
func OrderNames(names, order []string) []string {
	pos := make(map[string]int, len(order))
	for i, n := range order {
		if _, dup := pos[n]; !dup {
			pos[n] = i
		}
	}
	out := append([]string(nil), names...)
	sort.SliceStable(out, func(i, j int) bool {
		pi, iok := pos[out[i]]
		pj, jok := pos[out[j]]
		switch {
		case iok && jok:
			return pi < pj
		case iok != jok:
			return iok
		}
		return out[i] < out[j]
	})
	return out
}

// Relevant evaluates relevant_to with global `doc`. A throw is an error.
func (p *Push) Relevant(ctx context.Context, js *jsexpr.Sandbox, doc map[string]any) (bool, error) {
	if p.relevantTo == nil || p.relevantTo.Empty() {
		return false, nil
	}
	return sandbox(js).Truthy(ctx, p.relevantTo, map[string]any{"doc": doc})
}

func sandbox(js *jsexpr.Sandbox) *jsexpr.Sandbox {
	if js == nil {
		return jsexpr.NewSandbox(jsexpr.Options{})
	}
	return js
}

// MappingError is a payload that cannot be built.
type MappingError struct {
	Key    string // payload key
	Source string // the path or expr that failed
	Reason string
}

func (e *MappingError) Error() string {
	return fmt.Sprintf("mapping error for %q: %s: %s", e.Key, e.Source, e.Reason)
}

// Payload builds the payload of doc: each mapping entry's value (path read
// on {doc}, or expr evaluated with global doc) set at its key path;
// undefined values are skipped when optional, an error otherwise.
func (p *Push) Payload(ctx context.Context, js *jsexpr.Sandbox, doc map[string]any) (map[string]any, error) {
	if p.unsendable != "" {
		return nil, fmt.Errorf("push %q cannot be sent: %s", p.Name, p.unsendable)
	}
	payload := map[string]any{}
	root := map[string]any{"doc": doc}
	for _, e := range p.Mapping {
		if e.invalid != "" {
			return nil, &MappingError{Key: e.Key, Source: e.source(), Reason: e.invalid}
		}
		var (
			val     any
			defined bool
		)
		if e.expr != nil {
			v, err := sandbox(js).Eval(ctx, e.expr, map[string]any{"doc": doc})
			if err != nil {
				return nil, &MappingError{Key: e.Key, Source: e.source(), Reason: err.Error()}
			}
			val, defined = v, v != nil
			if v == nil && e.isUndef != nil {
				undef, err := sandbox(js).Truthy(ctx, e.isUndef, map[string]any{"doc": doc})
				defined = err == nil && !undef
			}
		} else {
			val, defined = jsv.Get(root, e.Path)
		}
		if !defined {
			if e.Optional {
				continue
			}
			return nil, &MappingError{Key: e.Key, Source: e.source(), Reason: "cannot be resolved (undefined)"}
		}
		setPath(payload, e.Key, jsv.Clone(val))
	}
	return payload, nil
}

func (e Mapping) source() string {
	if e.expr != nil {
		return "expr " + e.expr.Source()
	}
	return e.Path
}

// setPath sets value at a dotted key path, creating (or replacing
// non-object values by) intermediate objects.
func setPath(m map[string]any, key string, value any) {
	jsv.Set(m, key, value)
}
