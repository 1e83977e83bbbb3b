//! Cron schedules: parse a cron expression in an IANA time zone, then ask when it fires.
//!
//! [`CronSchedule::parse`] takes the expression and a zone name;
//! [`CronSchedule::next_after`] and [`CronSchedule::upcoming`] answer in epoch milliseconds,
//! the unit of every deadline in wharf. The matching itself is the `croner` crate's, on
//! `jiff` time; this module fixes which syntax is accepted, finds the zone, checks the input
//! and says in plain words what is wrong with it.
//!
//! # Syntax
//!
//! Five fields, `minute hour day-of-month month day-of-week`, or six with a seconds field
//! first. Fields are separated by whitespace; letters may be in any case.
//!
//! | Field        | Values                       | Also                  |
//! |--------------|------------------------------|-----------------------|
//! | second       | 0-59 (only in the 6-field form; 0 in the 5-field form) |      |
//! | minute       | 0-59                         |                       |
//! | hour         | 0-23                         |                       |
//! | day-of-month | 1-31                         | `L` last day, `15W` nearest weekday to the 15th, `LW` last weekday, `?` = `*` |
//! | month        | 1-12 or JAN-DEC              |                       |
//! | day-of-week  | 0-7 or SUN-SAT (0 and 7 are Sunday) | `5L` last Friday of the month, `1#2` second Monday, `?` = `*`, a leading `+` (see below) |
//!
//! Every field takes `*`, a value, a range `a-b`, a step `*/n` or `a-b/n`, and comma lists of
//! these. Not accepted: a step from a single value (`5/10`: write `5-59/10`), empty list
//! items (`1,,2`), names outside their own field (`MON` as a day of the month), a year
//! field (7 fields), more than [`MAX_EXPRESSION_LEN`] bytes, and an expression that never
//! fires (`0 0 30 2 *`).
//!
//! When both day-of-month and day-of-week are restricted (neither is `*`), a day matches if
//! **either** matches, as in classic cron: `0 0 13 * FRI` fires on every 13th and on every
//! Friday. A `+` before the day-of-week asks for **both**: `0 0 13 * +FRI` fires only on
//! Friday the 13th.
//!
//! # Aliases
//!
//! | Alias                   | Same as       |
//! |-------------------------|---------------|
//! | `@yearly`, `@annually`  | `0 0 1 1 *`   |
//! | `@monthly`              | `0 0 1 * *`   |
//! | `@weekly`               | `0 0 * * SUN` |
//! | `@daily`, `@midnight`   | `0 0 * * *`   |
//! | `@hourly`               | `0 * * * *`   |
//!
//! Any other `@` word (`@reboot`, `@every-minute`, ...) is refused.
//!
//! # Time zones
//!
//! The zone is an IANA name such as `Europe/Berlin`, `America/New_York` or `UTC` (any case;
//! [`CronSchedule::zone`] gives the name as the database spells it). An empty zone means UTC.
//! The fields are read as wall-clock time in that zone. A name is accepted only if the IANA
//! database lists it (names that are merely files of one machine's `/usr/share/zoneinfo`,
//! such as `localtime`, are refused, so a schedule means the same on every host). The rules
//! come from the system's database when it has the zone, else from the copy compiled into
//! the binary (jiff's `tzdb-bundle-always` feature), so zones work on a machine without
//! `/usr/share/zoneinfo`.
//!
//! # Daylight saving time
//!
//! The rules are croner's and depend on the kind of job. A **fixed-time** job has exactly one
//! value, and no `*`, range or step, in each of second, minute and hour (`30 2 * * *`,
//! `0 30 2 * * *`). Every other expression is an **interval** job (`0 * * * *`,
//! `*/30 2 * * *`, `30 2,14 * * *`). Observed in `Europe/Berlin` (the tests below pin this):
//!
//! - Spring forward (2026-03-29: clocks go from 02:00 CET straight to 03:00 CEST, so 02:00 to
//!   02:59:59 does not exist). A fixed-time job whose time is missing fires once, at the first
//!   instant after the gap: `30 2 * * *` fires at **03:00:00 CEST** (01:00 UTC), not 03:30.
//!   An interval job skips the missing times: `0 * * * *` fires 23 times that day,
//!   `*/30 2 * * *` not at all, `30 2,14 * * *` only at 14:30.
//! - Fall back (2026-10-25: clocks go from 03:00 CEST back to 02:00 CET, so 02:00 to 02:59:59
//!   happens twice). A fixed-time job fires once, at the **first** occurrence: `30 2 * * *`
//!   fires at 02:30 CEST (00:30 UTC) and not at 02:30 CET. An interval job fires at both:
//!   `0 * * * *` fires 25 times that day, `30 2,14 * * *` at 02:30 CEST, 02:30 CET and 14:30.
//!
//! # Limits
//!
//! [`CronSchedule::next_after`] returns `None` past croner's search limit, the end of the year
//! 5000, and for instants that jiff cannot represent (after the year 9999). Sub-second parts
//! of the start are respected: fire times are whole seconds, strictly after the start.

use std::fmt;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::Timestamp;
use jiff::tz::{TimeZone, TimeZoneDatabase};

/// The longest expression [`CronSchedule::parse`] accepts, in bytes.
pub const MAX_EXPRESSION_LEN: usize = 256;

/// The longest zone name [`CronSchedule::parse`] accepts, in bytes. The longest IANA name is
/// about 30 bytes.
pub const MAX_ZONE_LEN: usize = 64;

/// What [`CronSchedule::parse`] accepts, for error messages.
const ACCEPTED: &str = "expected 5 fields (minute hour day-of-month month day-of-week), \
     6 fields with seconds first, or one of @yearly @annually @monthly @weekly @daily \
     @midnight @hourly";

/// The aliases and the 5-field expressions they stand for.
const ALIASES: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

/// Why an expression or a zone was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// The expression is not one [`CronSchedule::parse`] accepts; the text says what is wrong
    /// and what is accepted.
    #[error("invalid cron expression {0}")]
    InvalidExpression(String),
    /// The zone is not an IANA time zone name (the text is the name as given, trimmed and cut
    /// to 40 characters).
    #[error("unknown time zone {0:?}: use an IANA name such as Europe/Berlin or UTC")]
    UnknownZone(String),
}

/// A parsed cron expression in an IANA time zone.
#[derive(Clone)]
pub struct CronSchedule {
    cron: Cron,
    tz: TimeZone,
    expression: String,
    zone: String,
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CronSchedule")
            .field("expression", &self.expression)
            .field("zone", &self.zone)
            .finish()
    }
}

impl CronSchedule {
    /// 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first, or an
    /// alias @yearly @annually @monthly @weekly @daily @midnight @hourly.
    /// `zone` is an IANA name such as "Europe/Berlin" or "UTC"; an empty zone means UTC.
    pub fn parse(expression: &str, zone: &str) -> Result<CronSchedule, CronError> {
        let cron = parse_expression(expression)?;
        let (tz, zone) = lookup_zone(zone)?;
        let schedule = CronSchedule {
            cron,
            tz,
            expression: expression.to_string(),
            zone,
        };
        // Without a year field the calendar repeats every 400 years, so an expression that
        // has no fire time after 1970 has none at all (such as 30 February).
        if schedule.next_after(0).is_none() {
            return Err(CronError::InvalidExpression(format!(
                "{}: it never fires (no date matches it, as with 30 February); {ACCEPTED}",
                quoted(expression)
            )));
        }
        Ok(schedule)
    }

    /// The first fire time strictly after `after_ms` (epoch milliseconds), in epoch ms; None
    /// if there is none.
    pub fn next_after(&self, after_ms: u64) -> Option<u64> {
        let after = i64::try_from(after_ms).ok()?;
        let mut from = Timestamp::from_millisecond(after)
            .ok()?
            .to_zoned(self.tz.clone());
        // Croner works in whole seconds and starts one second past `from`'s second, so its
        // first answer is already later than `after_ms`; the loop only keeps that promise if
        // croner ever answers otherwise. Each round starts past the previous answer.
        for _ in 0..4 {
            let next = self.cron.find_next_occurrence(&from, false).ok()?;
            let next_ms = u64::try_from(next.timestamp().as_millisecond()).ok()?;
            if next_ms > after_ms {
                return Some(next_ms);
            }
            from = next;
        }
        None
    }

    /// The next `n` fire times strictly after `after_ms`, increasing; fewer if the schedule
    /// runs out. The cost grows with `n` (one search per fire time).
    pub fn upcoming(&self, after_ms: u64, n: usize) -> Vec<u64> {
        let mut out = Vec::with_capacity(n.min(1024));
        let mut cursor = after_ms;
        while out.len() < n {
            match self.next_after(cursor) {
                Some(next) => {
                    out.push(next);
                    cursor = next;
                }
                None => break,
            }
        }
        out
    }

    /// The expression as given to [`CronSchedule::parse`].
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The time zone's IANA name (as the time zone database spells it; "UTC" when none was
    /// given).
    pub fn zone(&self) -> &str {
        &self.zone
    }
}

/// The fields of a 6-field expression, in order: name and what it takes.
const FIELDS: [(&str, &str); 6] = [
    ("second", "0-59"),
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31, L, W"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-7 or SUN-SAT (0 and 7 are Sunday), L, #"),
];

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Checks and parses an expression (5 or 6 fields, or an alias).
fn parse_expression(expression: &str) -> Result<Cron, CronError> {
    let invalid = |reason: String| {
        CronError::InvalidExpression(format!("{}: {reason}; {ACCEPTED}", quoted(expression)))
    };
    if expression.len() > MAX_EXPRESSION_LEN {
        return Err(invalid(format!(
            "it is {} bytes long, the limit is {MAX_EXPRESSION_LEN}",
            expression.len()
        )));
    }
    let text = expression.trim();
    if text.is_empty() {
        return Err(invalid(String::from("it is empty")));
    }
    let pattern = if text.starts_with('@') {
        match ALIASES
            .iter()
            .find(|(alias, _)| alias.eq_ignore_ascii_case(text))
        {
            Some((_, pattern)) => *pattern,
            None => return Err(invalid(String::from("unknown alias"))),
        }
    } else {
        text
    };
    let fields: Vec<&str> = pattern.split_whitespace().collect();
    if !(5..=6).contains(&fields.len()) {
        return Err(invalid(format!("it has {} fields", fields.len())));
    }
    // Name each field, seconds included, so errors can say which one is wrong.
    let skip = 6 - fields.len();
    let named = FIELDS.iter().skip(skip).zip(fields.iter().copied());
    for ((name, takes), field) in named.clone() {
        if let Some(reason) = lexical_problem(name, field) {
            return Err(invalid(format!(
                "the {name} field {field:?} {reason} (it takes {takes})"
            )));
        }
    }
    let parser = CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build();
    let cron = match parser.parse(pattern) {
        Ok(cron) => cron,
        Err(whole) => {
            // Find the field at fault: parse it alone, with every other field `*`.
            let culprit = named
                .clone()
                .enumerate()
                .find_map(|(i, ((name, takes), field))| {
                    let alone: Vec<&str> = (0..fields.len())
                        .map(|j| if i == j { field } else { "*" })
                        .collect();
                    parser.parse(&alone.join(" ")).err().map(|e| {
                        format!(
                            "the {name} field {field:?} is not valid: {} (it takes {takes})",
                            croner_reason(&e)
                        )
                    })
                });
            return Err(invalid(culprit.unwrap_or_else(|| croner_reason(&whole))));
        }
    };
    // A field that selects nothing would make every search walk to its limit second by
    // second; `lexical_problem` should have caught it, so this is a second line of defence.
    let pattern = &cron.pattern;
    let components = [
        &pattern.seconds,
        &pattern.minutes,
        &pattern.hours,
        &pattern.days,
        &pattern.months,
        &pattern.days_of_week,
    ];
    if let Some(((name, _), _)) = FIELDS
        .iter()
        .zip(components)
        .find(|(_, c)| c.values().is_empty() && !c.has_modifiers())
    {
        return Err(invalid(format!("the {name} field selects nothing")));
    }
    Ok(cron)
}

/// What croner says is wrong, without its prefixes and final full stop.
fn croner_reason(error: &croner::errors::CronError) -> String {
    use croner::errors::CronError as E;
    let text = match error {
        E::ComponentError(m) | E::InvalidPattern(m) | E::IllegalCharacters(m) => m.clone(),
        other => other.to_string(),
    };
    text.trim_end_matches('.').to_lowercase()
}

/// Problems croner would not report, or would silently misread: empty list items (croner
/// skips them, so `","` selects nothing) and names outside their own field (croner replaces
/// `MON` and `JAN` anywhere in the expression, so `0 0 MON * *` would mean the 1st).
fn lexical_problem(name: &str, field: &str) -> Option<&'static str> {
    if field.split(',').any(|item| item.trim().is_empty()) {
        return Some("has an empty list item");
    }
    let mut upper = field.to_ascii_uppercase();
    let letters_allowed: &[char] = match name {
        "month" => {
            for month in MONTH_NAMES {
                upper = upper.replace(month, "");
            }
            &[]
        }
        "day-of-week" => {
            for day in WEEKDAY_NAMES {
                upper = upper.replace(day, "");
            }
            &['L']
        }
        "day-of-month" => &['L', 'W'],
        _ => &[],
    };
    if upper
        .chars()
        .any(|c| c.is_alphabetic() && !letters_allowed.contains(&c))
    {
        return Some("has a letter or name that does not belong there");
    }
    None
}

/// Finds an IANA zone.
///
/// The name must be one the IANA database lists, which the copy compiled into the binary
/// (jiff's `tzdb-bundle-always`) answers the same way on every machine: names that are only
/// files of one machine's `/usr/share/zoneinfo`, such as `localtime`, would make a schedule
/// mean different things on different hosts. The rules come from the system database when it
/// has the zone (the OS keeps it current), else from the compiled-in copy, so zones work on a
/// machine without `/usr/share/zoneinfo` or with only part of it.
fn lookup_zone(zone: &str) -> Result<(TimeZone, String), CronError> {
    let name = zone.trim();
    if name.is_empty() {
        return Ok((TimeZone::UTC, String::from("UTC")));
    }
    let unknown = || CronError::UnknownZone(shorten(name));
    if name.len() > MAX_ZONE_LEN {
        return Err(unknown());
    }
    let bundled = TimeZoneDatabase::bundled()
        .get(name)
        .map_err(|_| unknown())?;
    let tz = jiff::tz::db().get(name).unwrap_or(bundled);
    let canonical = tz.iana_name().unwrap_or(name).to_string();
    Ok((tz, canonical))
}

/// The expression in quotes for an error message, cut short if it is long.
fn quoted(text: &str) -> String {
    format!("{:?}", shorten(text))
}

/// At most 40 characters of `text`, with "..." when cut.
fn shorten(text: &str) -> String {
    const KEEP: usize = 40;
    if text.chars().count() <= KEEP {
        text.to_string()
    } else {
        let mut short: String = text.chars().take(KEEP).collect();
        short.push_str("...");
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{Date, date};

    const BERLIN: &str = "Europe/Berlin";

    /// Epoch ms of an RFC 3339 instant with an explicit offset, which names one instant even
    /// inside a repeated hour.
    fn ms(rfc3339: &str) -> u64 {
        let ts: Timestamp = rfc3339.parse().unwrap();
        u64::try_from(ts.as_millisecond()).unwrap()
    }

    /// Epoch ms of the start of `day` and of the next day, in `zone`.
    fn day_bounds(zone: &str, day: Date) -> (u64, u64) {
        let start = day.in_tz(zone).unwrap().start_of_day().unwrap();
        let end = day
            .tomorrow()
            .unwrap()
            .in_tz(zone)
            .unwrap()
            .start_of_day()
            .unwrap();
        let to_ms = |z: jiff::Zoned| u64::try_from(z.timestamp().as_millisecond()).unwrap();
        (to_ms(start), to_ms(end))
    }

    /// Every fire time of `schedule` during the local `day`.
    fn fires_on(schedule: &CronSchedule, day: Date) -> Vec<u64> {
        let (start, end) = day_bounds(schedule.zone(), day);
        let mut out = Vec::new();
        let mut at = start - 1; // so a fire exactly at local midnight counts
        while let Some(next) = schedule.next_after(at) {
            if next >= end {
                break;
            }
            out.push(next);
            at = next;
        }
        out
    }

    /// `ms` rendered in `zone`, for assertion messages.
    fn local(ms: u64, zone: &str) -> String {
        let ts = Timestamp::from_millisecond(i64::try_from(ms).unwrap()).unwrap();
        ts.in_tz(zone).unwrap().to_string()
    }

    fn schedule(expression: &str, zone: &str) -> CronSchedule {
        CronSchedule::parse(expression, zone).unwrap()
    }

    // Europe/Berlin changes clocks on the last Sundays of March and October.
    const SPRING_FORWARD: Date = date(2026, 3, 29);
    const FALL_BACK: Date = date(2026, 10, 25);

    #[test]
    fn daily_0230_fires_once_at_0300_on_spring_forward_day() {
        let s = schedule("30 2 * * *", BERLIN);
        let fires = fires_on(&s, SPRING_FORWARD);
        // 02:30 does not exist that day; croner runs a fixed-time job at the first instant
        // after the gap, 03:00 CEST.
        assert_eq!(fires, vec![ms("2026-03-29T03:00:00+02:00")], "{fires:?}");
        assert_eq!(fires[0], ms("2026-03-29T01:00:00Z"));
        // The days around it are untouched.
        assert_eq!(
            fires_on(&s, date(2026, 3, 28)),
            vec![ms("2026-03-28T02:30:00+01:00")]
        );
        assert_eq!(
            fires_on(&s, date(2026, 3, 30)),
            vec![ms("2026-03-30T02:30:00+02:00")]
        );
    }

    #[test]
    fn daily_0230_fires_once_at_the_first_0230_on_fall_back_day() {
        for expression in ["30 2 * * *", "0 30 2 * * *"] {
            let s = schedule(expression, BERLIN);
            let fires = fires_on(&s, FALL_BACK);
            // 02:30 happens at +02:00 (CEST) and again an hour later at +01:00 (CET).
            assert_eq!(fires, vec![ms("2026-10-25T02:30:00+02:00")], "{expression}");
            assert_eq!(fires[0], ms("2026-10-25T00:30:00Z"));
            // Asked from between the two 02:30s, the next fire is the next day's.
            let between = ms("2026-10-25T02:45:00+02:00");
            assert_eq!(s.next_after(between), Some(ms("2026-10-26T02:30:00+01:00")));
        }
    }

    #[test]
    fn hourly_follows_the_length_of_the_local_day() {
        let s = schedule("0 * * * *", BERLIN);
        let spring = fires_on(&s, SPRING_FORWARD);
        assert_eq!(
            spring.len(),
            23,
            "{:?}",
            spring.iter().map(|m| local(*m, BERLIN))
        );
        // 01:00 CET is followed by 03:00 CEST, one real hour later.
        assert!(spring.contains(&ms("2026-03-29T01:00:00+01:00")));
        assert!(spring.contains(&ms("2026-03-29T03:00:00+02:00")));

        let fall = fires_on(&s, FALL_BACK);
        assert_eq!(
            fall.len(),
            25,
            "{:?}",
            fall.iter().map(|m| local(*m, BERLIN))
        );
        assert!(fall.contains(&ms("2026-10-25T02:00:00+02:00")));
        assert!(fall.contains(&ms("2026-10-25T02:00:00+01:00")));

        assert_eq!(fires_on(&s, date(2026, 6, 1)).len(), 24);
        // Across each transition the fires stay exactly one real hour apart.
        for fires in [spring, fall] {
            assert!(fires.windows(2).all(|w| w[1] - w[0] == 3_600_000));
        }
    }

    #[test]
    fn interval_jobs_skip_the_gap_and_repeat_in_the_fold() {
        let s = schedule("*/30 2 * * *", BERLIN);
        assert!(fires_on(&s, SPRING_FORWARD).is_empty());
        assert_eq!(
            fires_on(&s, FALL_BACK),
            vec![
                ms("2026-10-25T02:00:00+02:00"),
                ms("2026-10-25T02:30:00+02:00"),
                ms("2026-10-25T02:00:00+01:00"),
                ms("2026-10-25T02:30:00+01:00"),
            ]
        );
        // A list of hours makes a job an interval job too.
        let s = schedule("30 2,14 * * *", BERLIN);
        assert_eq!(
            fires_on(&s, SPRING_FORWARD),
            vec![ms("2026-03-29T14:30:00+02:00")]
        );
        assert_eq!(
            fires_on(&s, FALL_BACK),
            vec![
                ms("2026-10-25T02:30:00+02:00"),
                ms("2026-10-25T02:30:00+01:00"),
                ms("2026-10-25T14:30:00+01:00"),
            ]
        );
    }

    #[test]
    fn six_field_expressions_have_seconds_first() {
        let s = schedule("*/15 * * * * *", "UTC");
        let start = ms("2026-01-01T00:00:00Z");
        let fires = s.upcoming(start, 5);
        let expected: Vec<u64> = (1..=5).map(|i| start + i * 15_000).collect();
        assert_eq!(fires, expected);

        let s = schedule("30 0 12 * * *", "UTC");
        assert_eq!(s.next_after(start), Some(ms("2026-01-01T12:00:30Z")));
        // The 5-field form fires at second 0.
        let s = schedule("0 12 * * *", "UTC");
        assert_eq!(s.next_after(start), Some(ms("2026-01-01T12:00:00Z")));
    }

    #[test]
    fn aliases_match_their_expansions() {
        let start = ms("2026-05-13T10:11:12Z");
        for (alias, expansion) in ALIASES {
            for spelling in [
                alias.to_string(),
                alias.to_uppercase(),
                format!("  {alias} "),
            ] {
                let a = schedule(&spelling, BERLIN);
                let e = schedule(expansion, BERLIN);
                assert_eq!(a.upcoming(start, 5), e.upcoming(start, 5), "{spelling}");
                assert_eq!(a.expression(), spelling);
            }
        }
        let weekly = schedule("@weekly", "UTC");
        assert_eq!(weekly.next_after(start), Some(ms("2026-05-17T00:00:00Z"))); // a Sunday
        let yearly = schedule("@annually", "UTC");
        assert_eq!(yearly.next_after(start), Some(ms("2027-01-01T00:00:00Z")));
        let hourly = schedule("@hourly", BERLIN);
        assert_eq!(hourly.next_after(start), Some(ms("2026-05-13T11:00:00Z")));
        for unknown in [
            "@reboot",
            "@every-minute",
            "@bogus",
            "@",
            "@daily 5",
            "@ daily",
        ] {
            let err = CronSchedule::parse(unknown, "UTC").unwrap_err();
            assert!(matches!(err, CronError::InvalidExpression(_)), "{unknown}");
        }
    }

    #[test]
    fn empty_zone_means_utc() {
        let start = ms("2026-07-01T08:00:00Z");
        for zone in ["", "  ", "UTC", "utc"] {
            let s = schedule("0 0 * * *", zone);
            assert_eq!(s.zone(), "UTC", "{zone:?}");
            assert_eq!(s.next_after(start), Some(ms("2026-07-02T00:00:00Z")));
        }
        // The same expression in Berlin is two hours earlier in summer.
        let s = schedule("0 0 * * *", BERLIN);
        assert_eq!(s.next_after(start), Some(ms("2026-07-01T22:00:00Z")));
    }

    #[test]
    fn zone_names_are_iana_names() {
        assert_eq!(schedule("* * * * *", "europe/berlin").zone(), BERLIN);
        assert_eq!(schedule("* * * * *", "Etc/UTC").zone(), "Etc/UTC");
        for bad in [
            "Mars/Base",
            "localtime",
            "posixrules",
            "+02:00",
            "Z",
            "../../etc/passwd",
            "Europe/../Europe/Berlin",
            "Europe/Berlin\0",
        ] {
            let err = CronSchedule::parse("* * * * *", bad).unwrap_err();
            assert_eq!(err, CronError::UnknownZone(bad.to_string()), "{bad:?}");
        }
        let long = "A".repeat(10_000);
        assert!(matches!(
            CronSchedule::parse("* * * * *", &long),
            Err(CronError::UnknownZone(_))
        ));
        assert_eq!(
            CronSchedule::parse("* * * * *", "Mars/Base")
                .unwrap_err()
                .to_string(),
            "unknown time zone \"Mars/Base\": use an IANA name such as Europe/Berlin or UTC"
        );
    }

    #[test]
    fn the_compiled_in_zone_database_has_the_rules() {
        // What an edge box without /usr/share/zoneinfo falls back to.
        let bundled = TimeZoneDatabase::bundled();
        assert!(!bundled.is_definitively_empty());
        let berlin = bundled.get(BERLIN).unwrap();
        let winter: Timestamp = "2026-01-15T12:00:00Z".parse().unwrap();
        assert_eq!(berlin.to_offset(winter).seconds(), 3600);
        let summer: Timestamp = "2026-07-15T12:00:00Z".parse().unwrap();
        assert_eq!(berlin.to_offset(summer).seconds(), 7200);
    }

    #[test]
    fn next_after_is_strictly_after() {
        let s = schedule("0 12 * * *", "UTC");
        let fire = ms("2026-02-10T12:00:00Z");
        assert_eq!(s.next_after(fire - 1), Some(fire));
        assert_eq!(s.next_after(fire), Some(fire + 86_400_000));
        assert_eq!(s.next_after(fire + 1), Some(fire + 86_400_000));

        let s = schedule("* * * * * *", "UTC");
        assert_eq!(s.next_after(fire), Some(fire + 1000));
        assert_eq!(s.next_after(fire + 999), Some(fire + 1000));
        assert_eq!(s.next_after(fire - 1), Some(fire));
    }

    #[test]
    fn upcoming_is_increasing() {
        let start = ms("2026-03-28T00:00:00+01:00");
        for expression in [
            "30 2 * * *",
            "0 * * * *",
            "*/30 2 * * *",
            "*/7 * * * * *",
            "0 0 L * *",
            "0 9 * * 1#2",
        ] {
            let s = schedule(expression, BERLIN);
            let fires = s.upcoming(start, 100);
            assert_eq!(fires.len(), 100, "{expression}");
            assert!(fires[0] > start);
            assert!(fires.windows(2).all(|w| w[0] < w[1]), "{expression}");
            assert_eq!(fires[0], s.next_after(start).unwrap());
            assert_eq!(fires[1], s.next_after(fires[0]).unwrap());
        }
        assert!(schedule("@daily", "UTC").upcoming(start, 0).is_empty());
    }

    #[test]
    fn day_of_month_and_day_of_week_combine_with_or_unless_plus() {
        let start = ms("2026-01-01T00:00:00Z");
        let either = schedule("0 0 13 * FRI", "UTC").upcoming(start, 3);
        // Friday 2 Jan, Friday 9 Jan, Tuesday 13 Jan.
        let expected = ["2026-01-02", "2026-01-09", "2026-01-13"];
        let expected: Vec<u64> = expected
            .iter()
            .map(|d| ms(&format!("{d}T00:00:00Z")))
            .collect();
        assert_eq!(either, expected);
        // Friday the 13th: February and March 2026.
        let both = schedule("0 0 13 * +FRI", "UTC").upcoming(start, 2);
        assert_eq!(
            both,
            vec![ms("2026-02-13T00:00:00Z"), ms("2026-03-13T00:00:00Z")]
        );
    }

    #[test]
    fn far_and_huge_instants_give_none_not_a_panic() {
        let s = schedule("* * * * *", "UTC");
        assert_eq!(s.next_after(u64::MAX), None);
        assert_eq!(s.next_after(i64::MAX as u64), None);
        assert_eq!(s.next_after(ms("9999-12-30T00:00:00Z")), None);
        // croner searches up to the year 5000.
        assert_eq!(s.next_after(ms("5001-01-01T00:00:00Z")), None);
        assert_eq!(
            s.next_after(ms("4999-06-01T00:00:00Z")),
            Some(ms("4999-06-01T00:01:00Z"))
        );
        assert!(s.upcoming(u64::MAX, usize::MAX).is_empty());
        assert_eq!(s.next_after(0), Some(60_000)); // 1970-01-01T00:01:00Z
    }

    fn expression_error(expression: &str) -> String {
        match CronSchedule::parse(expression, "UTC") {
            Err(e @ CronError::InvalidExpression(_)) => e.to_string(),
            other => panic!("{expression:?} gave {other:?}"),
        }
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        let cases = [
            ("", "it is empty"),
            ("   ", "it is empty"),
            ("* * * * * * *", "it has 7 fields"),
            ("* * * *", "it has 4 fields"),
            ("60 * * * *", "the minute field \"60\" is not valid"),
            ("0 24 * * *", "the hour field \"24\""),
            ("0 0 32 * *", "the day-of-month field \"32\""),
            ("0 0 * 13 *", "the month field \"13\""),
            ("0 0 * * 8", "the day-of-week field \"8\""),
            ("60 * * * * *", "the second field \"60\""),
            ("*/0 * * * *", "step cannot be zero"),
            ("99999999999999999999 * * * *", "the minute field"),
            ("5-1 * * * *", "range out of bounds"),
            ("5/10 * * * *", "single number steps"),
            ("0 0 * * 1#6", "nth specifier out of bounds"),
            (", * * * *", "empty list item"),
            ("1,,2 * * * *", "empty list item"),
            ("0 0 MON * *", "does not belong there"),
            ("0 0 * * JAN", "does not belong there"),
            ("0 0 * MON *", "does not belong there"),
            ("x * * * *", "does not belong there"),
            ("0 0 30 2 *", "never fires"),
            ("0 0 31 4,6,9,11 *", "never fires"),
            ("@bogus", "unknown alias"),
        ];
        for (expression, wanted) in cases {
            let message = expression_error(expression);
            assert!(message.contains(wanted), "{expression:?}: {message}");
            assert!(message.contains("expected 5 fields"), "{message}");
        }
        let long = format!("{}*", "* ".repeat(MAX_EXPRESSION_LEN));
        let message = expression_error(&long);
        assert!(message.contains("the limit is 256"), "{message}");
        assert!(
            message.len() < 400,
            "the message quotes only the start: {message}"
        );
        // Exactly at the limit is fine.
        let padded = format!("{:<1$}", "* * * * *", MAX_EXPRESSION_LEN);
        assert_eq!(padded.len(), MAX_EXPRESSION_LEN);
        assert!(CronSchedule::parse(&padded, "UTC").is_ok());
    }

    #[test]
    fn accepted_syntax_parses() {
        for expression in [
            "* * * * *",
            "0 0 * * 7",
            "0 0 * * SUN-SAT",
            "0 9-17/2 * * mon-fri",
            "0 0 1 jan,jul *",
            "0 0 L * *",
            "0 0 15W * *",
            "0 0 LW * *",
            "0 0 ? * 5L",
            "0 0 29 2 *",
            "0 0 1-7 * +MON",
            "5-59/10 * * * *",
        ] {
            assert!(
                CronSchedule::parse(expression, BERLIN).is_ok(),
                "{expression}"
            );
        }
        // Sunday as 0 and as 7.
        let start = ms("2026-05-13T00:00:00Z");
        assert_eq!(
            schedule("0 0 * * 7", "UTC").next_after(start),
            schedule("0 0 * * 0", "UTC").next_after(start)
        );
    }

    #[test]
    fn schedules_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync + Clone + fmt::Debug>() {}
        shareable::<CronSchedule>();
        shareable::<CronError>();
    }

    /// A small deterministic generator, so a failure repeats.
    struct XorShift(u64);
    impl XorShift {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    #[test]
    fn fuzzed_input_never_panics() {
        let tokens = [
            "*",
            "*/2",
            "*/7",
            "0",
            "5",
            "13",
            "23",
            "29",
            "31",
            "59",
            "60",
            "1-5",
            "5-1",
            "L",
            "5L",
            "1#2",
            "1#9",
            "15W",
            "LW",
            "?",
            "JAN",
            "MON",
            "SUN-SAT",
            "1,2",
            "0-59/13",
            "7",
            "+1",
            "99999999999999999999",
            "-1",
            "@daily",
            "#",
            "/",
            ",",
            "-",
            "W",
            "L-2",
            "é",
            "ß",
            "\u{0}",
            "@",
            "1/",
            "/1",
            "--",
            "*/*",
            "+",
        ];
        let zones = [
            BERLIN,
            "UTC",
            "America/New_York",
            "Australia/Lord_Howe",
            "",
            "Nope",
        ];
        let starts = [
            0,
            ms("2026-03-29T00:30:00Z"),
            ms("2026-10-25T00:30:00Z"),
            u64::MAX,
        ];
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut parsed = 0;
        for _ in 0..3000 {
            let fields = 1 + rng.below(8);
            let expression: Vec<&str> = (0..fields)
                .map(|_| tokens[rng.below(tokens.len())])
                .collect();
            let expression = expression.join(" ");
            if let Ok(s) = CronSchedule::parse(&expression, zones[rng.below(zones.len())]) {
                parsed += 1;
                for start in starts {
                    let fires = s.upcoming(start, 3);
                    assert!(fires.iter().all(|f| *f > start), "{expression}");
                    assert!(fires.windows(2).all(|w| w[0] < w[1]), "{expression}");
                }
            }
        }
        assert!(parsed > 0);
        // Random bytes, as text.
        for _ in 0..3000 {
            let len = rng.below(40);
            let bytes: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
            let text = String::from_utf8_lossy(&bytes);
            let _ = CronSchedule::parse(&text, &text);
            let _ = CronSchedule::parse(&text, "UTC");
        }
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_text_is_refused_or_fires_strictly_later(
            expression in "[0-9*/,?LW#@+ a-zA-Z-]{0,40}|.{0,300}",
            zone in "[A-Za-z/_+-]{0,20}|Europe/Berlin",
            after in any::<u64>(),
        ) {
            let parsed = CronSchedule::parse(&expression, &zone);
            if let Some(next) = parsed.ok().and_then(|s| s.next_after(after)) {
                prop_assert!(next > after);
            }
        }
    }
}
