package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
)

// levelNames are the level names taken by --log-level and LOG_LEVEL:
// winston's, which CHT's services read from LOG_LEVEL, each mapped to the
// nearest level zerolog has (http, between info and verbose, to info;
// verbose to debug, so asking for more never gives less; silly to trace),
// and zerolog's trace.
var levelNames = map[string]zerolog.Level{
	"error": zerolog.ErrorLevel, "warn": zerolog.WarnLevel, "info": zerolog.InfoLevel,
	"http": zerolog.InfoLevel, "verbose": zerolog.DebugLevel, "debug": zerolog.DebugLevel,
	"silly": zerolog.TraceLevel, "trace": zerolog.TraceLevel,
}

// levelList names the levels taken, for messages.
const levelList = "error, warn, info, http, verbose, debug or silly"

// parseLevel reads a level name of levelNames, in any case.
func parseLevel(s string) (zerolog.Level, error) {
	if l, ok := levelNames[strings.ToLower(s)]; ok {
		return l, nil
	}
	return 0, fmt.Errorf("unknown log level %q", s)
}

// chtLogLevel sets --log-level from LOG_LEVEL, the variable CHT's compose
// file and Helm chart give the reference, when neither the command line
// nor SENTINEL_LOG_LEVEL set it (call after fromEnv). Empty counts as
// unset: compose files pass `LOG_LEVEL=${LOG_LEVEL}` through empty.
func chtLogLevel(fs *flag.FlagSet, from origins) {
	v := os.Getenv("LOG_LEVEL")
	if v == "" || flagSet(fs, "log-level") {
		return
	}
	_ = fs.Set("log-level", v) // a string flag takes anything; newLogger checks it
	from["log-level"] = "LOG_LEVEL"
}

// chtAPIURL is the CHT API to wait for at start: http://$API_HOST:$API_PORT
// (port 5988 by default), "" without API_HOST, as the reference reads them.
func chtAPIURL() (string, error) {
	host := os.Getenv("API_HOST")
	if host == "" {
		return "", nil
	}
	port := os.Getenv("API_PORT")
	if port == "" {
		port = "5988"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("API_PORT must be a port number, 1 to 65535 (got %q)", port)
	}
	if strings.ContainsAny(host, "/@?#") {
		// The value is left out: it may be a URL with credentials.
		return "", fmt.Errorf("API_HOST must be a host name or address, not a URL")
	}
	return "http://" + net.JoinHostPort(host, port), nil
}
