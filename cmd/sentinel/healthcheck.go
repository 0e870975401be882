package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

const healthcheckUsage = `Usage:
  sentinel healthcheck [--listen ADDR]

Asks /healthz of the daemon listening on ADDR (--listen, SENTINEL_LISTEN;
an all-interfaces address is asked on loopback) and exits 0 when it
answers 200, 1 otherwise: the probe of a container image without a shell
or curl (Docker's HEALTHCHECK, a Kubernetes exec probe).

Flags:
`

// healthcheck is `sentinel healthcheck`.
func healthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	listen := fs.String("listen", DefaultListen, "address of the daemon's /healthz")
	withEnv(fs, "listen")
	if code, ok := parseArgs(fs, healthcheckUsage, args, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sentinel healthcheck: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	from, err := fromEnv(fs, "listen")
	if err != nil {
		fmt.Fprintln(stderr, "sentinel healthcheck:", err)
		return 2
	}
	host, port, err := net.SplitHostPort(*listen)
	if err != nil {
		fmt.Fprintf(stderr, "sentinel healthcheck: %s must be an address such as 127.0.0.1:7988 (got %q)\n", from.label("listen"), *listen)
		return 2
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	url := "http://" + net.JoinHostPort(host, port) + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintln(stderr, "sentinel healthcheck:", err)
		return 1
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "sentinel healthcheck:", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "sentinel healthcheck: %s: %s: %s\n", url, resp.Status, strings.TrimSpace(string(body)))
		return 1
	}
	fmt.Fprint(stdout, string(body))
	return 0
}
