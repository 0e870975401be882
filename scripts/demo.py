"""Loads the demo data and prints what the daemon did (used by `make demo`)."""
import json
import os
import sys
import time
import urllib.parse
import urllib.request
import base64


def request(url, method='GET', body=None):
    parsed = urllib.parse.urlsplit(url)
    netloc = parsed.hostname + (':%d' % parsed.port if parsed.port else '')
    clean = urllib.parse.urlunsplit((parsed.scheme, netloc, parsed.path, parsed.query, ''))
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(clean, data=data, method=method, headers={'Content-Type': 'application/json'})
    if parsed.username:
        token = base64.b64encode(('%s:%s' % (parsed.username, parsed.password)).encode()).decode()
        req.add_header('Authorization', 'Basic ' + token)
    try:
        with urllib.request.urlopen(req) as resp:
            return json.loads(resp.read() or b'null')
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


def load(server, db, folder):
    request('%s/%s' % (server, db), 'PUT')
    settings = json.load(open(os.path.join(folder, 'settings.json')))
    docs = [{'_id': 'settings', 'settings': settings}]
    translations = json.load(open(os.path.join(folder, 'translations.json')))
    for code, texts in translations.items():
        docs.append({'_id': 'messages-' + code, 'type': 'translations', 'code': code, 'generic': texts, 'custom': {}})
    now_ms = int(time.time() * 1000)
    for doc in json.load(open(os.path.join(folder, 'docs.json'))):
        # "$now" in the demo docs stands for the time of loading, so that the
        # schedules computed from it lie in the future.
        docs.append({k: (now_ms if v == '$now' else v) for k, v in doc.items()})
    request('%s/%s/_bulk_docs' % (server, db), 'POST', {'docs': docs})
    print('# loaded settings and %d docs into %s' % (len(docs) - 1, db))


def wait_processed(server, db, ids, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        meta = request('%s/%s-sentinel/_local/transitions-seq' % (server, db)) or {}
        since = meta.get('value', 0)
        res = request('%s/%s/_changes?since=%s&filter=_doc_ids' % (server, db, urllib.parse.quote(str(since))),
                      'POST', {'doc_ids': ids})
        if res and not res.get('results'):
            return True
        time.sleep(0.2)
    return False


def shown(value):
    """A short form of a field's value for the table."""
    if isinstance(value, dict):
        return value.get('_id') or '{...}'
    if isinstance(value, list):
        return '[%d]' % len(value)
    return str(value)


def changes(loaded, doc):
    """What the daemon changed in doc: the fields that differ from the doc as
    the demo loaded it (its tasks are listed below its row)."""
    what = []
    for key in sorted(set(doc) | set(loaded)):
        if key in ('_id', '_rev', 'tasks', 'scheduled_tasks') or loaded.get(key) == '$now':
            continue
        if key not in doc:
            what.append('-%s' % key)
        elif key == 'errors' and doc[key] != loaded.get(key):
            what += ['error %s' % e.get('code') for e in doc[key] if e not in (loaded.get(key) or [])]
        elif doc[key] == loaded.get(key):
            continue
        elif isinstance(loaded.get(key), dict) and isinstance(doc[key], dict) and loaded[key].get('_id') and doc[key].get('_id') == loaded[key]['_id']:
            what.append('%s=%s (with its lineage)' % (key, shown(doc[key])))
        else:
            what.append('%s=%s' % (key, shown(doc[key])))
    return what


def report(server, db, folder):
    loaded = json.load(open(os.path.join(folder, 'docs.json')))
    ids = [d['_id'] for d in loaded]
    if not wait_processed(server, db, ids):
        print('the daemon did not finish in time; see its log')
        sys.exit(1)
    time.sleep(0.5)
    print()
    print('%-10s %-18s %-46s %s' % ('DOC', 'TYPE', 'TRANSITIONS', 'WHAT THE DAEMON CHANGED'))
    print('-' * 100)
    for before in loaded:
        doc_id = before['_id']
        doc = request('%s/%s/%s' % (server, db, doc_id)) or {}
        info = request('%s/%s-sentinel/%s-info' % (server, db, doc_id)) or {}
        ran = ', '.join(sorted((info.get('transitions') or {}).keys())) or '-'
        kind = doc.get('form') or doc.get('type', '')
        print('%-10s %-18s %-46s %s' % (doc_id, kind, ran, '; '.join(changes(before, doc)) or '-'))
        for task in doc.get('tasks') or []:
            for m in task.get('messages') or []:
                print('%-10s   reply   [%s] to %s: %s' % ('', task.get('state'), m.get('to'), m.get('message', m.get('error'))))
        for task in doc.get('scheduled_tasks') or []:
            msgs = task.get('messages') or [{}]
            print('%-10s   %-7s [%s] due %s %s: %s' % ('', 'sched', task.get('state'), task.get('due'), task.get('type', ''),
                                                  msgs[0].get('message', task.get('message_key', ''))))
    created = request('%s/%s/_all_docs?include_docs=true' % (server, db)) or {}
    for row in created.get('rows', []):
        d = row.get('doc') or {}
        if d.get('source_id'):
            print('\n%s created %s %s "%s" (%s) under %s' % (d['source_id'], d.get('type'), d['_id'][:8], d.get('name', ''),
                  d.get('patient_id') or d.get('place_id'), (d.get('parent') or {}).get('_id')))


if __name__ == '__main__':
    cmd, server, db, folder = sys.argv[1:5]
    {'load': load, 'report': report}[cmd](server, db, folder)
