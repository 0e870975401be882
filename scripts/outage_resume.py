#!/usr/bin/env python3
"""How long work stayed stopped after each outage of a chaos.py --outages run,
from the daemon's side: reads the run's log (the daemon must run with
SENTINEL_LOG_LEVEL=silly, which logs every request to CouchDB) and prints, for
each 'outage over' mark of the harness, the time to the daemon's first
completed write (a bulk write with a doc written, or a 201/202 answer to a
PUT or POST of one doc; not _local/ docs nor reads).

chaos.py's own write_s polls the databases' update_seq, and between polls it
checks whether the backlog is caught up by reading the whole rest of the feed
(`_changes` without a limit): on PouchDB Server under a backlog that read
takes seconds, which its write_s then includes. This reads the daemon's clock.

    python3 scripts/outage_resume.py /tmp/sentinel-chaos-XXXX/chaosNNN.log
"""
import datetime, json, re, sys


def ts(s):
    return datetime.datetime.fromisoformat(s.replace('Z', '+00:00')[:26] + '+00:00').timestamp()


def main(path):
    day = None
    marks, writes = [], []
    with open(path, errors='replace') as f:
        for line in f:
            if line.startswith('--- chaos '):
                m = re.match(r'--- chaos (\d\d:\d\d:\d\d\.\d+) (.*)', line)
                if m and 'outage over' in m.group(2):
                    marks.append(m.group(1))
                continue
            if '"CouchDB request"' not in line and '"Bulk write"' not in line:
                continue
            try:
                e = json.loads(line)
            except ValueError:
                continue
            day = day or e['time'][:10]
            if e.get('message') == 'Bulk write':
                write = e.get('written', 0) > 0  # its request line says 201 even if all conflicted
            else:
                path_ = e.get('path', '')
                write = e.get('method') in ('PUT', 'POST') and e.get('status') in (201, 202) and \
                    '/_local/' not in path_ and not path_.endswith(
                        ('/_bulk_docs', '/_all_docs', '/_changes', '/_find', '/_session'))
            if write:
                writes.append(ts(e['time']))
    worst = 0
    for i, hhmmss in enumerate(marks):
        up = ts('%sT%s' % (day, hhmmss))
        after = [w for w in writes if w > up]
        if not after:
            print('outage %d: up at %s, no write after it' % (i + 1, hhmmss))
            continue
        d = after[0] - up
        worst = max(worst, d)
        print('outage %d: up at %s, first completed write after %.2f s' % (i + 1, hhmmss, d))
    print('RESULT outages=%d write_max_s=%.2f (daemon side)' % (len(marks), worst))


if __name__ == '__main__':
    main(sys.argv[1])
