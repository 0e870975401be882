package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"sentinel-go/config"
	"sentinel-go/couch"
	"sentinel-go/daemon"
	"sentinel-go/jsexpr"
	"sentinel-go/outbound"
	"sentinel-go/pipeline"
)

// explainCmd is `sentinel explain [--json] DOCID`: it runs the pipeline on
// one doc in memory, writing nothing, and prints what each transition would
// do. Exit 0 when explained, 1 when the doc is missing, the config invalid
// or the database unreadable, 2 on usage errors.
func explainCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the explanation as JSON")
	couchURL, sentinelDB := dbFlags(fs)
	exprTimeout := fs.Duration("expr-timeout", 100*time.Millisecond, "time bound of each config expression evaluation")
	// The daemon's settings it shares, from the same variables; --json is
	// a choice of this one run, not a setting.
	settings := []string{"couch-url", "sentinel-db", "expr-timeout"}
	withEnv(fs, settings...)
	const head = "Usage: sentinel explain [--json] [--couch-url URL] DOCID\n\nRuns the configured transitions on one doc in memory and prints what they would do; writes nothing.\n"
	if code, ok := parseArgs(fs, head, args, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	from, err := fromEnv(fs, settings...)
	if err != nil {
		fmt.Fprintln(stderr, "sentinel explain:", err)
		return 2
	}
	if err := positive(from.label("expr-timeout"), *exprTimeout); err != nil {
		fmt.Fprintln(stderr, "sentinel explain:", err)
		return 2
	}
	if *couchURL == "" {
		fmt.Fprintln(stderr, "sentinel explain: COUCH_URL is not set (or pass --couch-url)")
		return 2
	}
	loc, err := couch.ParseURL(*couchURL, *sentinelDB)
	if err != nil {
		fmt.Fprintln(stderr, "sentinel explain:", err)
		return 2
	}
	client, err := couch.Open(loc)
	if err != nil {
		fmt.Fprintln(stderr, "sentinel explain:", err)
		return 1
	}
	defer client.Close()
	cfg, err := daemon.LoadConfig(ctx, client.Main)
	if err != nil {
		fmt.Fprintln(stderr, "sentinel explain:", err)
		return 1
	}
	if !cfg.Valid() {
		fmt.Fprintln(stderr, "sentinel explain: the settings have errors, so no transition would run:")
		for _, p := range cfg.Problems {
			if p.Severity == config.Error {
				fmt.Fprintln(stderr, " ", p.String())
			}
		}
		return 1
	}
	log, _ := newLogger("console", "warn", nil, stderr)
	ex, err := pipeline.Explain(ctx, pipeline.ExplainOptions{
		Config: cfg, Main: client.Main, Sentinel: client.Sentinel, DocID: fs.Arg(0),
		JS: jsexpr.NewSandbox(jsexpr.Options{Timeout: *exprTimeout}), Log: log,
		Secrets: outbound.NewSecrets(loc.Server, loc.MainDB),
	})
	if err != nil {
		if errors.Is(err, couch.ErrNotFound) {
			fmt.Fprintf(stderr, "sentinel explain: no doc %q in db %s\n", fs.Arg(0), loc.MainDB)
		} else {
			fmt.Fprintln(stderr, "sentinel explain:", err)
		}
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		_ = enc.Encode(ex)
		return 0
	}
	writeExplanation(stdout, ex)
	return 0
}

// writeExplanation prints ex for people.
func writeExplanation(w io.Writer, ex *pipeline.Explanation) {
	fmt.Fprintf(w, "doc %s at rev %s, processed as of %s\n", ex.DocID, ex.Rev, ex.Now)
	if ex.Skipped != "" {
		fmt.Fprintf(w, "not processed: %s\n", ex.Skipped)
		return
	}
	for _, n := range ex.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintln(w, "\nTransitions (in pipeline order):")
	width := 0
	for _, t := range ex.Transitions {
		if t.Enabled && len(t.Name) > width {
			width = len(t.Name)
		}
	}
	var disabled []string
	for _, t := range ex.Transitions {
		if !t.Enabled {
			disabled = append(disabled, t.Name)
			continue
		}
		var what string
		switch {
		case t.AlreadyRan != "":
			what = "skipped: already ran at rev " + t.AlreadyRan + " (same revision generation)"
		case t.Filter != nil && !*t.Filter:
			what = "filter false: " + t.WhyNot
		case t.Error != "":
			what = "filter true; failed: " + t.Error
		case len(t.Would) > 0:
			what = "filter true; not run (it acts outside the databases):"
		case t.Changed:
			what = "filter true; ran: changed the doc"
		default:
			what = "filter true; ran: changed nothing"
		}
		fmt.Fprintf(w, "  %-*s  %s\n", width, t.Name, what)
		for _, s := range t.Would {
			fmt.Fprintf(w, "  %-*s    %s\n", width, "", s)
		}
		for _, e := range t.Exprs {
			val := fmt.Sprint(e.Value)
			if e.Error != "" {
				val = "error: " + e.Error
			}
			fmt.Fprintf(w, "  %-*s    bool_expr %s: `%s` → %s\n", width, "", e.Path, e.Expr, val)
		}
	}
	if len(disabled) > 0 {
		fmt.Fprintf(w, "  disabled: %s\n", strings.Join(disabled, ", "))
	}
	if !ex.Changed {
		fmt.Fprintln(w, "\nThe doc would not be saved.")
	} else {
		fmt.Fprintln(w, "\nThe doc would be saved with:")
		writeDiff(w, "  ", ex.Diff)
	}
	if len(ex.Messages) > 0 {
		fmt.Fprintln(w, "\nMessages it would queue:")
		for _, m := range ex.Messages {
			fmt.Fprintf(w, "  %s %s to %s", m.Kind, m.State, quoteOr(m.To, "(nobody)"))
			if m.Due != "" {
				fmt.Fprintf(w, " due %s", m.Due)
			}
			if m.Type != "" || m.Group != nil {
				fmt.Fprintf(w, " (schedule %s, group %v)", m.Type, m.Group)
			}
			if m.DocID != ex.DocID {
				fmt.Fprintf(w, " on doc %s", m.DocID)
			}
			fmt.Fprintf(w, ": %s\n", m.Message)
		}
	}
	if len(ex.Writes) > 0 {
		fmt.Fprintln(w, "\nOther docs it would write:")
		for _, d := range ex.Writes {
			typ := ""
			if d.Type != "" {
				typ = " (" + d.Type + ")"
			}
			fmt.Fprintf(w, "  %s %s db: %s%s\n", d.Action, d.DB, d.ID, typ)
			writeDiff(w, "    ", d.Diff)
		}
	}
}

func writeDiff(w io.Writer, indent string, diff []pipeline.DiffEntry) {
	for _, d := range diff {
		switch d.Op {
		case "added":
			writeLeaves(w, indent+"+ ", d.Path, d.New)
		case "removed":
			writeLeaves(w, indent+"- ", d.Path, d.Old)
		default:
			fmt.Fprintf(w, "%s~ %s: %s → %s\n", indent, d.Path, shortJSON(d.Old), shortJSON(d.New))
		}
	}
}

// writeLeaves prints a value that appeared or disappeared one leaf a line,
// so that a new task reads as its fields rather than one long JSON line.
func writeLeaves(w io.Writer, prefix, path string, v any) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) > 0 {
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				writeLeaves(w, prefix, path+"."+k, x[k])
			}
			return
		}
	case []any:
		if len(x) > 0 {
			for i, e := range x {
				writeLeaves(w, prefix, fmt.Sprintf("%s[%d]", path, i), e)
			}
			return
		}
	}
	fmt.Fprintf(w, "%s%s: %s\n", prefix, path, shortJSON(v))
}

// shortJSON is v as JSON, cut to a line's worth (--json has it whole).
func shortJSON(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	s := strings.TrimSuffix(b.String(), "\n")
	if r := []rune(s); len(r) > 300 {
		s = string(r[:297]) + "…"
	}
	return s
}

func quoteOr(s, empty string) string {
	if s == "" {
		return empty
	}
	return s
}
