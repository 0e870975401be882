#!/usr/bin/env python3
"""Restart cost with the lookup index snapshot (issue #15 part 2): live.py's
database (--preload M old docs, checkpoint at the end), a first start (no
snapshot: the _all_docs scan, then the snapshot is written), a stop, docs
written while the daemon is down (a contact, a report), then a restart:
`restart` is the time from each restart (--restarts of them) to a new report,
saved right after it, being processed; then --rate reports/s for --duration s give the p99
latency (save to processed), and `rss_mb` is the restarted daemon's peak RSS.

    python3 scripts/restart.py [--preload 10000] [--sut 'exec ./bin/sentinel'] [--couch-url URL]

Uses ../shared/tools/live.py's preload and watcher and bench.py's workload.
"""
import argparse, os, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get('SHARED', os.path.join(HERE, '..', '..', 'shared'))
sys.path.insert(0, os.path.join(SHARED, 'tools'))
sys.path.insert(0, os.path.join(SHARED, 'conformance'))
import bench  # noqa: E402
import live  # noqa: E402
import run as conformance  # noqa: E402


def start(root, sut, db, sdb, log):
    env = dict(os.environ, COUCH_URL='%s/%s' % (root, db), SENTINEL_DB=sdb, TZ='UTC')
    return subprocess.Popen(['/bin/sh', '-c', sut], env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def report(couch, db, doc_id, i=0):
    couch.request('PUT', '/%s/%s' % (db, doc_id), body={
        "type": "data_record", "form": "P", "from": "+2547000000%02d" % ((i % bench.CHWS) + 1),
        "reported_date": int(time.time() * 1000), "fields": {"patient_name": doc_id}})
    return time.time()


def wait(cond, what, timeout=1800):
    end = time.time() + timeout
    while not cond():
        if time.time() > end:
            raise RuntimeError('timed out waiting for ' + what)
        time.sleep(0.02)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sut', default='exec ./bin/sentinel')
    ap.add_argument('--preload', type=int, default=10000)
    ap.add_argument('--rate', type=float, default=20)
    ap.add_argument('--duration', type=float, default=20)
    ap.add_argument('--restarts', type=int, default=2, help='restarts measured (the load follows the last)')
    ap.add_argument('--couch-url')
    args = ap.parse_args()
    server, root = None, args.couch_url
    if not root:
        server = conformance.PouchServer(os.environ.get('CONFORMANCE_CACHE', os.path.expanduser('~/.cache/sentinel-conformance')))
        root = server.start()
    logdir = tempfile.mkdtemp(prefix='sentinel-restart-')
    couch = conformance.Couch(root)
    db = 'restart%d' % (int(time.time() * 1000) % 10**9)
    sdb = db + '-sentinel'
    try:
        couch.create_db(db)
        couch.create_db(sdb)
        now = int(time.time() * 1000)
        couch.bulk_save(db, [{"_id": "settings", "settings": bench.settings('registration')}])
        couch.bulk_save(db, bench.contacts(now))
        live.preload(couch, db, args.preload, now)
        seq = couch.request('GET', '/' + db)[1]['update_seq']
        couch.request('PUT', '/%s/_local/transitions-seq' % sdb, body={"_id": "_local/transitions-seq", "value": seq})
        watcher = live.Watcher(root, db, seq)
        watcher.start()
        log = open(os.path.join(logdir, 'first.log'), 'wb')
        t0 = time.time()
        proc = start(root, args.sut, db, sdb, log)
        report(couch, db, 'first-report')
        wait(lambda: 'first-report' in watcher.done, 'the first report')
        first_s = watcher.done['first-report'] - t0

        def snapshot():
            st, _ = couch.request('GET', '/%s/sentinel-go-lookup-index' % sdb, allow=(404,))
            return st == 200
        wait(snapshot, 'the snapshot')
        snap_s = time.time() - t0
        conformance.stop_group(proc)
        log.close()
        # While the daemon is down: a new CHW-like contact and a report.
        couch.bulk_save(db, [{"_id": "down-person", "type": "person", "phone": "+254799999999", "name": "Down",
                              "parent": {"_id": "clinic1", "parent": {"_id": "hc1"}}}])
        report(couch, db, 'down-report', 1)
        restarts = []
        for k in range(args.restarts):
            if k > 0:
                conformance.stop_group(proc)
                log.close()
                report(couch, db, 'down-report-%d' % k, 1)
            log = open(os.path.join(logdir, 'restart%d.log' % k), 'wb')
            t1 = time.time()
            proc = start(root, args.sut, db, sdb, log)
            report(couch, db, 'restart-report-%d' % k, 2)
            wait(lambda: 'restart-report-%d' % k in watcher.done, 'the report after the restart')
            restarts.append(watcher.done['restart-report-%d' % k] - t1)
        saved = {}
        t_load, i = time.time(), 0
        while time.time() - t_load < args.duration:
            due = t_load + i / args.rate
            if due > time.time():
                time.sleep(due - time.time())
            saved['live-%06d' % i] = report(couch, db, 'live-%06d' % i, i)
            i += 1
        end = time.time() + 60
        while time.time() < end and any(k not in watcher.done for k in saved):
            time.sleep(0.05)
        rss = live.peak_rss_mb(proc.pid)
        conformance.stop_group(proc)
        log.close()
        watcher.stop = True
        lat = [(watcher.done[k] - t) * 1000 for k, t in saved.items() if k in watcher.done]
        print('RESULT restart preload=%d first=%.2fs snapshot_at=%.1fs restart=%s p50=%.0fms p99=%.0fms rss=%sMB late=%d logs=%s' % (
            args.preload, first_s, snap_s, ','.join('%.2fs' % r for r in restarts), live.pct(lat, 50) or -1, live.pct(lat, 99) or -1, rss,
            len(saved) - len(lat), logdir))
        return 0
    finally:
        for d in (db, sdb):
            try:
                couch.delete_db(d)
            except Exception:
                pass
        if server:
            server.stop()


if __name__ == '__main__':
    sys.exit(main())
