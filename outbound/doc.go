// Package outbound pushes documents to external HTTP APIs as configured in
// settings.outbound (transitions/mark_for_outbound.md, schedules.md §8): the
// config (relevant_to, destination, mapping, cron), the payload and its
// JavaScript-compatible hash, the POST with its auth, completed_tasks in info
// docs and the `task:outbound:<id>` queue docs of the sentinel db. The
// mark_for_outbound transition and the outbound job both use it.
//
// Built clean-room from the specification and the conformance scenarios: no
// CHT source was read.
//
// # Secrets
//
// auth.password_key and auth.value_key name secrets, never stored in
// app_settings. They are looked up, on every push, in:
//
//  1. the environment variable SENTINEL_SECRET_<KEY>: the key upper-cased,
//     every character other than A-Z and 0-9 replaced by "_" (password_key
//     "emr-pass" → SENTINEL_SECRET_EMR_PASS);
//  2. the JSON file named by SENTINEL_SECRETS_FILE, {"<key>": "<secret>"},
//     exact keys, re-read on each lookup;
//  3. CHT's own vault (NewSecrets, which the daemon builds once at start):
//     database <main db>-vault, doc credential:<encodeURIComponent(key)>,
//     decrypted with CouchDB's couch_httpd_auth/secret (sms.md §6.1), so
//     that credentials saved through CHT's API keep working.
//
// Secrets never appear in logs or errors.
//
// # Order of pushes
//
// Pushes run in the key order of settings.outbound. encoding/json loses it,
// so the daemon computes it with KeyOrder from the raw settings JSON and
// passes it to Parse (config.Settings.OutboundOrder); without it, names are
// sorted.
package outbound
