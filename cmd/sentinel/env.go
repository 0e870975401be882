package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// envPrefix starts the environment variable of every flag: SENTINEL_ and
// the flag's name in upper snake case (--job-interval is
// SENTINEL_JOB_INTERVAL), so that a unit's EnvironmentFile can hold any
// setting under one predictable name.
const envPrefix = "SENTINEL_"

// envName is the environment variable of flag name. --couch-url and
// --sentinel-db keep the names the CHT Sentinel reads (COUCH_URL,
// SENTINEL_DB), so that an existing deployment's environment works as is.
func envName(name string) string {
	switch name {
	case "couch-url":
		return "COUCH_URL"
	case "sentinel-db":
		return "SENTINEL_DB"
	}
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// withEnv names the environment variable of each flag of names in its
// --help line. The usage never shows the variable's value: COUCH_URL
// holds a password.
func withEnv(fs *flag.FlagSet, names ...string) {
	for _, name := range names {
		if f := fs.Lookup(name); f != nil {
			f.Usage += " [env " + envName(name) + "]"
		}
	}
}

// origins records which flags were set from the environment, so that an
// invalid value is reported under the name the operator actually wrote.
type origins map[string]string

// label names flag name as the operator gave it: "--job-interval", or
// "SENTINEL_JOB_INTERVAL (--job-interval)" when it came from the
// environment.
func (o origins) label(name string) string {
	if env, ok := o[name]; ok {
		return env + " (--" + name + ")"
	}
	return "--" + name
}

// fromEnv sets each flag of names that the command line left unset from its
// environment variable (envName), parsed as the flag parses its value: a
// flag on the command line wins, and an invalid value is an error as it
// would be on the command line. A variable that is set but empty counts
// (SENTINEL_LISTEN= disables the listener as --listen= does). Call it after
// fs.Parse.
func fromEnv(fs *flag.FlagSet, names ...string) (origins, error) {
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	o := origins{}
	for _, name := range names {
		env := envName(name)
		v, ok := os.LookupEnv(env)
		if !ok || onCommandLine[name] {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			// The value is left out: it may be a credential put in the
			// wrong variable.
			return nil, fmt.Errorf("%s: invalid value for --%s (want %s): %w", env, name, want(fs.Lookup(name)), err)
		}
		o[name] = env
	}
	return o, nil
}

// want describes the values flag f takes, for an error message.
func want(f *flag.Flag) string {
	if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case time.Duration:
			return "a duration such as 5m or 100ms"
		case bool:
			return "true or false"
		}
	}
	return "see --help"
}
