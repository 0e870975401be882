"""A stand-in for CHT API as Sentinel sees it at start (make image-test).

`python3 fake_cht_api.py PORT DELAY_S` answers GET /setup/poll with 503
for DELAY_S seconds after it starts, as API does while it runs its
migrations, then with 200 and a small JSON body; every other path is 404.
It serves on 127.0.0.1 only and stops on SIGTERM.
"""

import http.server
import json
import sys
import time


def main():
    port, delay = int(sys.argv[1]), float(sys.argv[2])
    ready_at = time.monotonic() + delay

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/setup/poll":
                self.send_error(404)
                return
            up = time.monotonic() >= ready_at
            body = json.dumps({"version": "4.x-fake", "ready": up}).encode()
            self.send_response(200 if up else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args):
            sys.stderr.write("%.3f %s\n" % (time.time(), fmt % args))
            sys.stderr.flush()

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
