// Package recur holds recurrences as config authors write them for the
// scheduled jobs (reminders' `cron` / `text_expression`, schedules.md §7): a
// 5-field cron expression or a later.js text expression, and one question
// about them: the latest scheduled time in a window.
//
// Built clean-room from schedules.md and the public documentation of
// later.js (MIT): no CHT source was read.
//
// # Cron
//
// The standard 5 fields `minute hour day-of-month month day-of-week`,
// parsed with github.com/robfig/cron/v3's standard parser (ranges, lists,
// steps, month and weekday names, the @yearly/@monthly/@weekly/@daily/@hourly
// descriptors, a `CRON_TZ=` prefix). Day of week 7 is accepted as Sunday, as
// crontab and later.js do. `@every <duration>` has no fixed phase and is
// rejected. As in cron, when both day-of-month and day-of-week are
// restricted a day matching either fires.
//
// # Text expressions (later.js subset)
//
// Case-insensitive. Grammar (`|` alternatives, `[ ]` optional, `{ }` repeated):
//
//	expression = schedule { "also" schedule }            ; union of schedules
//	schedule   = clause { [ "and" | "," ] clause }        ; all clauses hold
//	clause     = at | on | every
//	at         = "at" time { sep time }
//	time       = H:MM [ :SS ] [ am | pm ]  |  H ( am | pm )   ; "10:15am", "9 am", "17:00"
//	on         = "on" days
//	           | "on" [ "the" ] ordinal { sep ordinal } "day" [ "of" [ "the" ] ( "month" | "week" ) ]
//	days       = dayname { sep dayname } | "weekday(s)" | "weekend(s)"
//	dayname    = sun mon tue tues wed thu thur thurs fri sat, or the full name
//	ordinal    = "first" | "last" | N | Nst | Nnd | Nrd | Nth
//	every      = "every" [ N ] unit | "every" ( "weekday" | "weekend" ) [ "s" ]
//	unit       = second(s) sec(s) | minute(s) min(s) | hour(s) hr(s) | day(s) | month(s)
//	sep        = "," | "and"
//
// Examples: `at 9:00 am on Mon`, `on Mon,Wed at 10:00`, `every weekday at 8:30`,
// `every 5 minutes`, `every 2 hours`, `on the first day of the month at 9 am`,
// `on the last day of the month`, `at 9:00 am and 5:00 pm`,
// `every 15 minutes and on Fri`, `at 8:00 on Mon also at 12:00 on Sat`.
//
// Semantics, as in later.js:
//   - each clause restricts one time period: `at` the time of day, `on` days
//     of the week or of the month, `every N unit` the values of that unit
//     counted from its first value (minutes 0, N, 2N… of each hour; hours 0,
//     N… of each day; days of the month 1, 1+N…; months January, January+N…);
//     a day-of-week ordinal counts from Sunday (first = Sunday, last = Saturday);
//   - all clauses of a schedule must hold;
//   - periods finer than the finest restricted one are at their start (`on
//     Mon` fires at 00:00:00, `every 2 hours` at hh:00:00); coarser ones are
//     free (`every 5 minutes` fires all day);
//   - times are local (the location given to Latest).
//
// Anything else (`except`, `before`, `after`, `between`, `starting`, months
// by name, weeks and years, the same period restricted twice in one
// schedule, expressions that can never fire) is rejected with an error naming
// the offending word: an invalid expression is a config problem.
package recur
