#!/usr/bin/env node
// Generates the Moment.js locale data that package templates formats dates
// with (templates/momentdata/<code>.json) and the golden outputs its tests
// compare against (templates/testdata/moment/<code>.json), by running
// Moment.js itself. Moment.js is MIT-licensed (THIRD_PARTY_NOTICES.md).
//
// Usage: scripts/gen-moment-locales.sh (installs moment@2.30.1 in a scratch
// directory outside the repository and runs this file).
//
// What a locale file holds, and how Go reads it (templates/localedata.go):
//   months, monthsShort, weekdays: a list of forms, each {names, re?,
//     before?}; the first form whose JavaScript regex `re` matches the
//     (expanded) format string is used, the last form (no re) otherwise. With
//     `before`, re is tested on the part of the format before the first
//     occurrence of `before` (el). This covers moment's {format, standalone,
//     isFormat} objects and the few locales that pick names in a function.
//   weekdaysShort, weekdaysMin: 7 names, Sunday first.
//   longDate: LT LTS L LL LLL LLLL l ll lll llll.
//   ordinals: per period (D DDD d M Q w W y) a default pattern and the
//     exceptions by number; "%d" stands for the number.
//   meridiem: [minute of day, upper case, lower case] at each change.
//   postformat: characters the locale replaces in the whole output.
//   dow, doy, invalidDate.
'use strict';
const fs = require('fs');
const path = require('path');

const momentDir = process.argv[2];
const repo = process.argv[3];
if (!momentDir || !repo) {
  console.error('usage: gen-moment-locales.js MOMENT_PACKAGE_DIR REPO_ROOT');
  process.exit(2);
}
const moment = require(momentDir);
const version = require(path.join(momentDir, 'package.json')).version;
const codes = fs.readdirSync(path.join(momentDir, 'locale'))
  .filter((f) => f.endsWith('.js')).map((f) => f.slice(0, -3)).sort();
for (const c of codes) require(path.join(momentDir, 'locale', c));
moment.locale('en');
codes.unshift('en');

const proto = Object.getPrototypeOf(moment.localeData('en'));
const MONTHS_IN_FORMAT = '(?:D[oD]?(\\[[^\\[\\]]*\\]|\\s)+MMMM?)';
const inMonth = (i) => moment.utc([2000, i, 15]);
const onDay = (d) => moment.utc([2023, 0, 1 + d]); // 2023-01-01 is a Sunday
const range = (n, f) => Array.from({ length: n }, (_, i) => f(i));

// Locales whose names come from a function: the forms it chooses between and
// the test it applies to the format (read from moment's locale source).
const fnForms = {
  'months:el': (ld) => [
    { names: range(12, (i) => ld.months(inMonth(i), 'D MMMM')), re: 'D', before: 'MMMM' },
    { names: range(12, (i) => ld.months(inMonth(i), 'MMMM')) },
  ],
  'months:pl': (ld) => [
    { names: range(12, (i) => ld.months(inMonth(i), 'D MMMM')), re: 'D MMMM' },
    { names: range(12, (i) => ld.months(inMonth(i), 'MMMM')) },
  ],
  'weekdays:uk': (ld) => [
    { names: range(7, (d) => ld.weekdays(onDay(d), '[В] dddd')), re: '(\\[[ВвУу]\\]) ?dddd' },
    { names: range(7, (d) => ld.weekdays(onDay(d), '[минулої] dddd')), re: '\\[?(?:минулої|наступної)? ?\\] ?dddd' },
    { names: range(7, (d) => ld.weekdays(onDay(d), 'dddd')) },
  ],
};
for (const c of ['es', 'es-do', 'es-mx', 'es-us', 'nl', 'nl-be', 'fy']) {
  fnForms['monthsShort:' + c] = (ld) => [
    { names: range(12, (i) => ld.monthsShort(inMonth(i), '-MMM-')), re: '-MMM-' },
    { names: range(12, (i) => ld.monthsShort(inMonth(i), 'MMM')) },
  ];
}

function forms(ld, code, kind, n, defaultRe) {
  if (ld[kind] !== proto[kind]) {
    const f = fnForms[kind + ':' + code];
    if (!f) throw new Error(`${code}: ${kind} is a function this generator does not know`);
    return f(ld);
  }
  const v = ld['_' + kind];
  if (Array.isArray(v)) return [{ names: v.slice(0, n) }];
  const re = v.isFormat ? v.isFormat.source : defaultRe;
  if (!re) throw new Error(`${code}: ${kind} has forms but no isFormat`);
  return [{ names: v.format.slice(0, n), re }, { names: v.standalone.slice(0, n) }];
}

function ordinals(ld) {
  const ranges = { D: [1, 31], DDD: [1, 366], d: [0, 6], M: [1, 12], Q: [1, 4], w: [1, 53], W: [1, 53], y: [1, 2200] };
  const out = {};
  for (const [p, [lo, hi]] of Object.entries(ranges)) {
    const pats = {};
    const count = {};
    for (let n = lo; n <= hi; n++) {
      const o = String(ld.ordinal(n, p));
      let pat = o.replace(String(n), '%d');
      if (pat.replace('%d', String(n)) !== o || !pat.includes('%d')) pat = o;
      pats[n] = pat;
      count[pat] = (count[pat] || 0) + 1;
    }
    const def = Object.keys(count).sort((a, b) => count[b] - count[a] || (a < b ? -1 : 1))[0];
    const x = {};
    for (const [n, pat] of Object.entries(pats)) if (pat !== def) x[n] = pat;
    out[p] = Object.keys(x).length ? { def, x } : { def };
  }
  return out;
}

function meridiem(ld) {
  const out = [];
  let last = '';
  for (let m = 0; m < 24 * 60; m++) {
    const u = ld.meridiem(Math.floor(m / 60), m % 60, false);
    const l = ld.meridiem(Math.floor(m / 60), m % 60, true);
    if (u + '\u0000' + l !== last) {
      out.push([m, u, l]);
      last = u + '\u0000' + l;
    }
  }
  return out;
}

function postformat(ld) {
  const out = {};
  for (let c = 32; c < 127; c++) {
    const s = String.fromCharCode(c);
    const p = ld.postformat(s);
    if (p !== s) out[s] = p;
  }
  // The replacement must be per character for the data to describe it.
  const probe = 'Jun 18, 2027 [x] 0123456789,.';
  const whole = ld.postformat(probe);
  const perChar = probe.split('').map((s) => out[s] || s).join('');
  if (whole !== perChar) throw new Error(`${ld._abbr}: postformat is not a character map`);
  return out;
}

function localeFile(code) {
  const ld = moment.localeData(code);
  const d = {
    code,
    moment: version,
    months: forms(ld, code, 'months', 12, MONTHS_IN_FORMAT),
    monthsShort: forms(ld, code, 'monthsShort', 12, MONTHS_IN_FORMAT),
    weekdays: forms(ld, code, 'weekdays', 7, null),
    weekdaysShort: ld.weekdaysShort(),
    weekdaysMin: ld.weekdaysMin(),
    longDate: Object.fromEntries(['LT', 'LTS', 'L', 'LL', 'LLL', 'LLLL', 'l', 'll', 'lll', 'llll'].map((k) => [k, ld.longDateFormat(k)])),
    ordinals: ordinals(ld),
    meridiem: meridiem(ld),
    postformat: postformat(ld),
    dow: ld.firstDayOfWeek(),
    doy: ld.firstDayOfYear(),
    invalidDate: ld.invalidDate(),
  };
  const eras = ld.eras().map((e) => e.name).join(',');
  if (eras !== 'Anno Domini,Before Christ') d.erasNotSupported = eras; // ja: see localedata.go
  return d;
}

// Golden cases: 12 instants of 2027, one in each month, the first seven on
// each weekday (Sunday first), days from 1 to 31 and hours across the day.
// The formats that print month names run on all twelve, the others on the
// first seven; the meridiem runs at 48 times of one day.
const instants = range(12, (i) => {
  let day = 1 + ((i * 11) % 28);
  while (new Date(Date.UTC(2027, i, day)).getUTCDay() !== i % 7) day++;
  return Date.UTC(2027, i, day, (i * 5 + 3) % 24, (i * 17) % 60, (i * 7) % 60, i * 83);
});
const monthFormats = [
  'M Mo MM MMM MMMM', 'MMMM', 'MMM', 'D MMMM', 'D MMM', 'DD-MMM-YYYY', 'Do MMMM YYYY', 'MMMM D',
  'MMMM YYYY', 'D. MMMM', 'LL', 'll', 'ddd, MMM Do, YYYY',
];
const formats = [
  'dddd ddd dd d do e E', 'D Do DD DDD DDDo DDDD', 'Q Qo w wo W Wo gggg GGGG',
  'h hh H HH k m mm s ss S SSS a A Z', 'LT', 'LTS', 'L', 'LLL', 'LLLL', 'l', 'lll', 'llll',
  '[В] dddd', '[минулої] dddd', '[в] dddd', 'dddd HH:mm', '[წინა] dddd',
  'YYYY-MM-DD [0123456789,]', 'YYYY-MM-DDTHH:mm:ssZ',
];
const hours = range(48, (i) => Date.UTC(2027, 5, 18, Math.floor(i / 2), (i % 2) * 30 + (i % 5)));

// goldenFile holds the instants once, then one format per line:
// [format, instant set, outputs]; the sets are "months" (all twelve
// instants), "weekdays" (the first seven) and "hours".
function goldenFile(code) {
  const sets = { months: instants, weekdays: instants.slice(0, 7), hours };
  const line = (f, set) => JSON.stringify([f, set, sets[set].map((t) => moment(t).locale(code).format(f))]);
  const lines = [
    ...monthFormats.map((f) => line(f, 'months')),
    ...formats.map((f) => line(f, 'weekdays')),
    line('HH:mm a A', 'hours'),
  ];
  return JSON.stringify({ code, moment: version, tz: 'UTC', months: instants, hours }) + '\n' + lines.join('\n') + '\n';
}

if (process.env.TZ !== 'UTC') throw new Error('run with TZ=UTC');
const dataDir = path.join(repo, 'templates', 'momentdata');
const goldenDir = path.join(repo, 'templates', 'testdata', 'moment');
for (const code of codes) {
  fs.writeFileSync(path.join(dataDir, code + '.json'), JSON.stringify(localeFile(code)) + '\n');
  fs.writeFileSync(path.join(goldenDir, code + '.json'), goldenFile(code));
}
console.log(`${codes.length} locales from moment ${version}`);
