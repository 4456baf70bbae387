//! Cron schedules and the time zone they are read in. A schedule is 6-field cron with
//! seconds first (`0 */30 * * * *`), the form tokio-cron-scheduler reads, and it means
//! what it says where the user is: `0 0 9 * * *` is 9:00 local time, unless
//! `[sync] timezone` names another zone (`UTC`, `Europe/Paris`).

use chrono::{DateTime, FixedOffset, Offset, TimeZone, Utc};

/// Parses a 6-field cron expression (seconds first), as the scheduler reads it.
pub fn parse_schedule(expr: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(expr)
        .map_err(|e| {
            format!(
                "{expr:?} is not a cron schedule with seconds (e.g. \"0 */30 * * * *\" for every 30 minutes): {e}"
            )
        })
}

/// The time zone schedules are read in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zone {
    /// The machine's local time zone (`TZ`, else `/etc/localtime`).
    Local,
    /// A named zone: `UTC` or an IANA name.
    Named(chrono_tz::Tz),
}

impl Zone {
    /// Parses `[sync] timezone`: empty or `local` for the local zone, else `UTC` or an
    /// IANA name.
    pub fn parse(name: &str) -> Result<Zone, String> {
        let name = name.trim();
        if name.is_empty() || name.eq_ignore_ascii_case("local") {
            return Ok(Zone::Local);
        }
        if name.eq_ignore_ascii_case("utc") {
            return Ok(Zone::Named(chrono_tz::Tz::UTC));
        }
        name.parse().map(Zone::Named).map_err(|_| {
            format!(
                "unknown time zone {name:?}: use \"local\", \"UTC\" or an IANA name such as \
                 \"Europe/Paris\" or \"America/New_York\""
            )
        })
    }

    /// The zone's offset from UTC at `at`.
    pub fn offset_at(&self, at: DateTime<Utc>) -> FixedOffset {
        match self {
            Zone::Local => chrono::Local
                .offset_from_utc_datetime(&at.naive_utc())
                .fix(),
            Zone::Named(tz) => tz.offset_from_utc_datetime(&at.naive_utc()).fix(),
        }
    }

    /// The next time `cron` fires after `after`, read in this zone.
    pub fn next_after(&self, cron: &croner::Cron, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let next = match self {
            Zone::Local => cron
                .find_next_occurrence(&after.with_timezone(&chrono::Local), false)
                .map(|t| t.with_timezone(&Utc)),
            Zone::Named(tz) => cron
                .find_next_occurrence(&after.with_timezone(tz), false)
                .map(|t| t.with_timezone(&Utc)),
        };
        next.ok()
    }

    /// `at` as wall-clock time in this zone, to the second, with its offset
    /// (`2026-03-29T04:00:00+02:00`).
    pub fn wall_clock(&self, at: DateTime<Utc>) -> String {
        at.with_timezone(&self.offset_at(at))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

impl std::fmt::Display for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Zone::Local => f.write_str("local time"),
            Zone::Named(tz) => f.write_str(tz.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn a_schedule_fires_at_its_wall_clock_time_across_a_dst_change() {
        let paris = Zone::parse("Europe/Paris").expect("zone");
        let nine = parse_schedule("0 0 9 * * *").expect("cron");
        // Winter: 9:00 in Paris is 8:00 UTC; summer (from 29 March 2026): 7:00 UTC.
        assert_eq!(
            paris.next_after(&nine, at("2026-03-27T12:00:00Z")),
            Some(at("2026-03-28T08:00:00Z"))
        );
        assert_eq!(
            paris.next_after(&nine, at("2026-03-28T12:00:00Z")),
            Some(at("2026-03-29T07:00:00Z"))
        );
        assert_eq!(
            paris.wall_clock(at("2026-03-29T07:00:00Z")),
            "2026-03-29T09:00:00+02:00"
        );
        assert_ne!(
            paris.offset_at(at("2026-03-28T12:00:00Z")),
            paris.offset_at(at("2026-03-29T12:00:00Z"))
        );
        let utc = Zone::parse("UTC").expect("utc");
        assert_eq!(
            utc.next_after(&nine, at("2026-03-28T12:00:00Z")),
            Some(at("2026-03-29T09:00:00Z"))
        );
        assert_eq!(
            utc.wall_clock(at("2026-03-29T09:00:00Z")),
            "2026-03-29T09:00:00Z"
        );
    }

    #[test]
    fn zones_are_local_utc_or_iana_names() {
        assert_eq!(Zone::parse(""), Ok(Zone::Local));
        assert_eq!(Zone::parse("Local"), Ok(Zone::Local));
        assert_eq!(Zone::parse("utc"), Ok(Zone::Named(chrono_tz::Tz::UTC)));
        assert_eq!(
            Zone::parse("America/New_York"),
            Ok(Zone::Named(chrono_tz::Tz::America__New_York))
        );
        let err = Zone::parse("Mars/Olympus").expect_err("unknown");
        assert!(
            err.contains("Mars/Olympus") && err.contains("IANA"),
            "{err}"
        );
        assert!(parse_schedule("*/5 * * * *").is_err(), "5 fields");
    }
}
