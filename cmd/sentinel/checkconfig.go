package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"unicode/utf8"

	"sentinel-go/config"
	"sentinel-go/daemon"
	"sentinel-go/transitions"
)

// checkConfig is `sentinel check-config [--json] FILE`: it validates an
// app_settings file offline and exits 0 when valid, 1 when not (a JSON
// syntax error included, reported with its line and column), 2 when the
// file cannot be read or is not a JSON object.
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
	var problems []config.Problem
	if err := json.Unmarshal(data, &raw); err != nil {
		var syntax *json.SyntaxError
		if !errors.As(err, &syntax) {
			fmt.Fprintf(stderr, "sentinel check-config: %s is not a JSON object: %v\n", fs.Arg(0), err)
			return 2
		}
		// Invalid, like any other problem: exit 1, and where it is.
		line, col := lineCol(data, syntax)
		problems = append(problems, config.Errorf("", "JSON syntax error at line %d, column %d: %v", line, col, err))
		return report(problems, *asJSON, stdout)
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
	return report(checkSettings(raw, tr), *asJSON, stdout)
}

// checkSettings is every check of check-config on parsed app_settings.
func checkSettings(raw map[string]any, tr config.Translations) []config.Problem {
	problems := transitions.Check(raw, tr)
	// Jobs' configs (reminders, purge, archive) are checked too.
	return append(problems, daemon.CheckJobs(config.NewSettings(raw))...)
}

// report prints the problems, as text or JSON, and returns the exit code:
// 1 when any is an error, else 0.
func report(problems []config.Problem, asJSON bool, stdout io.Writer) int {
	sort.SliceStable(problems, func(i, j int) bool { return problems[i].Path < problems[j].Path })
	if asJSON {
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

// lineCol is where a JSON syntax error is, 1-based, the column in
// characters: the byte it stopped at, or after the last non-blank byte when
// the input ended too soon.
func lineCol(data []byte, err *json.SyntaxError) (line, col int) {
	at := int(err.Offset) - 1 // Offset counts the bytes read, the bad one included
	if at >= len(data) || at < 0 || err.Error() == "unexpected end of JSON input" {
		at = len(bytes.TrimRight(data, " \t\r\n"))
	}
	before := data[:at]
	line = bytes.Count(before, []byte("\n")) + 1
	return line, utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:]) + 1
}
