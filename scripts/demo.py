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


def report(server, db, folder):
    ids = [d['_id'] for d in json.load(open(os.path.join(folder, 'docs.json')))]
    if not wait_processed(server, db, ids):
        print('the daemon did not finish in time; see its log')
        sys.exit(1)
    time.sleep(0.5)
    print()
    print('%-10s %-18s %-46s %s' % ('DOC', 'TYPE', 'TRANSITIONS', 'WHAT CHANGED'))
    print('-' * 100)
    for doc_id in ids:
        doc = request('%s/%s/%s' % (server, db, doc_id)) or {}
        info = request('%s/%s-sentinel/%s-info' % (server, db, doc_id)) or {}
        ran = ', '.join(sorted((info.get('transitions') or {}).keys())) or '-'
        what = []
        for key in ('patient_id', 'place_id', 'sent_by', 'case_id'):
            if key in doc:
                what.append('%s=%s' % (key, doc[key]))
        if doc.get('errors'):
            what += ['error %s' % e.get('code') for e in doc['errors']]
        kind = doc.get('form') or doc.get('type', '')
        print('%-10s %-18s %-46s %s' % (doc_id, kind, ran, '; '.join(what) or '-'))
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
    dead = [d for d in (request('%s/%s/mary' % (server, db)),) if d and 'date_of_death' in d]
    for d in dead:
        print('\nmary now has date_of_death=%s (set by death_reporting from death1)' % d['date_of_death'])


if __name__ == '__main__':
    cmd, server, db, folder = sys.argv[1:5]
    {'load': load, 'report': report}[cmd](server, db, folder)
