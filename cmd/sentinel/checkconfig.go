package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"sentinel-go/config"
	"sentinel-go/schedule/jobs"
	"sentinel-go/transitions"
)

// checkConfig is `sentinel check-config [--json] FILE`: it validates an
// app_settings file offline and exits 0 when valid, 1 when not, 2 when the
// file cannot be read.
func checkConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the problems as a JSON list of {path, severity, message}")
	trPath := fs.String("translations", "", "translations to check message keys against: a directory of messages-*.json docs, or a JSON file {locale: {key: text}}")
	const head = "Usage: sentinel check-config [--json] [--translations DIR_OR_FILE] FILE\n\nValidates app_settings (the bare settings object, or a settings doc with a `settings` key).\n"
	if code, ok := parseArgs(fs, head, args, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "sentinel check-config:", err)
		return 2
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		fmt.Fprintf(stderr, "sentinel check-config: %s is not a JSON object: %v\n", fs.Arg(0), err)
		return 2
	}
	if inner, ok := raw["settings"].(map[string]any); ok && (raw["_id"] == "settings" || raw["transitions"] == nil) {
		raw = inner
	}
	tr := config.Translations{}
	if *trPath != "" {
		if tr, err = readTranslations(*trPath); err != nil {
			fmt.Fprintln(stderr, "sentinel check-config:", err)
			return 2
		}
	}
	problems := transitions.Check(raw, tr)
	// Jobs' configs (reminders: cron and text expressions) are checked too.
	_, rp := jobs.ParseReminders(config.NewSettings(raw))
	problems = append(problems, rp...)
	sort.SliceStable(problems, func(i, j int) bool { return problems[i].Path < problems[j].Path })
	if *asJSON {
		if problems == nil {
			problems = []config.Problem{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(problems)
	} else {
		errs, warns := 0, 0
		for _, p := range problems {
			fmt.Fprintln(stdout, p.String())
			if p.Severity == config.Error {
				errs++
			} else {
				warns++
			}
		}
		fmt.Fprintf(stdout, "%d errors, %d warnings\n", errs, warns)
	}
	if config.HasErrors(problems) {
		return 1
	}
	return 0
}
