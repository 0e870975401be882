#!/usr/bin/env python3
"""A rewound feed must be cheap (issue #21 item 5): process a registration
backlog, stop the daemon, delete `_local/transitions-seq` (as a cluster whose
feed rewinds to 0 would), restart it, and measure the re-read of the whole
feed: how long it takes (changes/s) and how many writes it makes (none is
right: every doc is unchanged since it was processed).

    python3 scripts/rewind.py [--n 20000] [--sut 'exec ./bin/sentinel'] [--couch-url URL]

Uses ../shared/tools/bench.py's workload and its PouchDB Server manager.
"""
import argparse, base64, json, os, subprocess, sys, tempfile, time, urllib.parse, urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get('SHARED', os.path.join(HERE, '..', '..', 'shared'))
sys.path.insert(0, os.path.join(SHARED, 'tools'))
sys.path.insert(0, os.path.join(SHARED, 'conformance'))
import bench  # noqa: E402
import run as conformance  # noqa: E402


def update_seqs(couch, db, sdb):
    return (bench.seq_value(couch.request('GET', '/' + db)[1]['update_seq']),
            bench.seq_value(couch.request('GET', '/' + sdb)[1]['update_seq']))


def feed_ceiling(root, db):
    """The server's own rate for reading the whole feed with its docs in
    batches of 500, as the daemon reads it, in the same unit as the daemon's
    figure (the update_seq over the time): no daemon can re-read a rewound
    feed faster than this. (urllib: http.client sends a POST's headers and
    body apart, and the delayed ACKs then cost most of the time.)"""
    parts = urllib.parse.urlsplit(root)
    base = urllib.parse.urlunsplit((parts.scheme, parts.hostname + (':%d' % parts.port if parts.port else ''),
                                    parts.path, '', ''))
    auth = 'Basic ' + base64.b64encode(('%s:%s' % (urllib.parse.unquote(parts.username or ''),
                                                   urllib.parse.unquote(parts.password or ''))).encode()).decode()
    since, t0 = 0, time.time()
    while True:
        req = urllib.request.Request('%s/%s/_changes?limit=500&include_docs=true&since=%s' % (base, db, since),
                                     data=b'{}', headers={'Authorization': auth, 'Content-Type': 'application/json'})
        with urllib.request.urlopen(req, timeout=60) as resp:
            r = json.load(resp)
        if not r['results']:
            break
        since = r['last_seq']
    return bench.seq_value(since) / (time.time() - t0)


def run_until_caught_up(couch, root, sut, db, sdb, log, timeout_s=900):
    env = dict(os.environ, COUCH_URL='%s/%s' % (root, db), SENTINEL_DB=sdb, TZ='UTC')
    t0 = time.time()
    proc = subprocess.Popen(['/bin/sh', '-c', sut], env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        while True:
            done, _ = bench.caught_up(couch, db, sdb)
            if done:
                return time.time() - t0
            if proc.poll() is not None:
                raise RuntimeError('daemon exited with %s; log: %s' % (proc.returncode, log.name))
            if time.time() - t0 > timeout_s:
                raise RuntimeError('daemon did not catch up; log: ' + log.name)
            time.sleep(0.05)
    finally:
        conformance.stop_group(proc)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sut', default='exec ./bin/sentinel')
    ap.add_argument('--n', type=int, default=20000)
    ap.add_argument('--couch-url')
    ap.add_argument('--db', help='rewind this already processed db again (kept afterwards)')
    ap.add_argument('--keep', action='store_true', help='keep the databases')
    a = ap.parse_args()
    server = None
    root = a.couch_url
    if not root:
        server = conformance.PouchServer(os.path.expanduser('~/.cache/sentinel-conformance'))
        root = server.start()
    try:
        couch = conformance.Couch(root)
        db = a.db or 'rewind%d' % (int(time.time() * 1000) % 10**9)
        sdb = db + '-sentinel'
        logdir = tempfile.mkdtemp(prefix='sentinel-rewind-')
        first = 0
        if not a.db:
            bench.load(couch, db, 'registration', a.n)
            with open(os.path.join(logdir, 'first.log'), 'wb') as log:
                first = run_until_caught_up(couch, root, a.sut, db, sdb, log)
        _, local = couch.request('GET', '/%s/_local/transitions-seq' % sdb)
        couch.request('DELETE', '/%s/_local/transitions-seq' % sdb, query={'rev': local['_rev']})
        before = update_seqs(couch, db, sdb)
        changes = before[0]
        ceiling = feed_ceiling(root, db)
        with open(os.path.join(logdir, 'rewound.log'), 'wb') as log:
            again = run_until_caught_up(couch, root, a.sut, db, sdb, log)
        after = update_seqs(couch, db, sdb)
        # The checkpoint itself is a _local doc: it moves no update_seq.
        writes = (after[0] - before[0]) + (after[1] - before[1])
        print('first pass: %d reports in %.1f s (db %s)' % (a.n, first, db))
        print('RESULT rewound n=%d changes=%d wall_s=%.2f changes_per_s=%.0f writes=%d '
              'feed_ceiling_per_s=%.0f ratio=%.2f (logs %s)' % (
                  a.n, changes, again, changes / again, writes, ceiling, changes / again / ceiling, logdir))
        if not (a.keep or a.db):
            couch.delete_db(db)
            couch.delete_db(sdb)
    finally:
        if server:
            server.stop()


if __name__ == '__main__':
    main()
