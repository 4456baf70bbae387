//! Timestamps as ChatGPT sends them: float or int epoch seconds, ISO-8601 with or
//! without a zone, `null`, or absent. Everything is normalised to epoch seconds.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A timestamp normalised to epoch seconds; `None` when absent, null or unreadable.
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd)]
pub struct Time(pub Option<f64>);

impl Time {
    /// The epoch seconds, if known.
    pub fn secs(self) -> Option<f64> {
        self.0
    }

    /// RFC 3339 UTC text (`…Z`), with microseconds only when the time has a fraction.
    pub fn to_rfc3339(self) -> Option<String> {
        self.0.and_then(secs_to_rfc3339)
    }
}

/// Parses an ISO-8601 timestamp; a string without a zone is taken as UTC.
pub fn parse_iso(s: &str) -> Option<f64> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(datetime_secs(dt.with_timezone(&Utc)));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(datetime_secs(naive.and_utc()));
        }
    }
    // A space before the zone or a zone without a colon (`+0000`) also appears in the wild.
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .ok()
        .map(|dt| datetime_secs(dt.with_timezone(&Utc)))
}

fn datetime_secs(dt: DateTime<Utc>) -> f64 {
    dt.timestamp() as f64 + f64::from(dt.timestamp_subsec_micros()) / 1e6
}

/// Formats epoch seconds as RFC 3339 UTC, rounded to microseconds.
pub fn secs_to_rfc3339(secs: f64) -> Option<String> {
    if !secs.is_finite() {
        return None;
    }
    let micros = (secs * 1e6).round();
    if micros.abs() > 1e17 {
        return None;
    }
    let dt = DateTime::<Utc>::from_timestamp_micros(micros as i64)?;
    Some(dt.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// RFC 3339 UTC text to the second (`2026-01-02T03:04:05Z`): how status, logs and
/// saved records show a moment.
pub fn rfc3339_secs(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The wall clock as [`rfc3339_secs`] text.
pub fn now_rfc3339() -> String {
    rfc3339_secs(Utc::now())
}

/// The wall clock as epoch seconds (0 before 1970, which never happens in practice).
pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Epoch microseconds, the integer form used for ordering and comparisons.
pub fn secs_to_micros(secs: f64) -> i64 {
    if secs.is_finite() {
        (secs * 1e6).round() as i64
    } else {
        0
    }
}

impl<'de> de::Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TimeVisitor)
    }
}

struct TimeVisitor;

impl<'de> Visitor<'de> for TimeVisitor {
    type Value = Time;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a timestamp")
    }
    fn visit_f64<E>(self, v: f64) -> Result<Time, E> {
        Ok(Time(v.is_finite().then_some(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Time, E> {
        Ok(Time(Some(v as f64)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Time, E> {
        Ok(Time(Some(v as f64)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Time, E> {
        Ok(Time(parse_iso(v).or_else(|| v.trim().parse::<f64>().ok())))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Time, E> {
        Ok(Time(None))
    }
    fn visit_unit<E>(self) -> Result<Time, E> {
        Ok(Time(None))
    }
    fn visit_none<E>(self) -> Result<Time, E> {
        Ok(Time(None))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Time, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Time, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Time(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Time, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Time(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(json: &str) -> Time {
        serde_json::from_str(json).expect("valid json")
    }

    #[test]
    fn every_shape_seen_in_the_wild() {
        assert_eq!(t("1704629915.775304").0, Some(1704629915.775304));
        assert_eq!(t("1700000000").0, Some(1_700_000_000.0));
        assert_eq!(t("null").0, None);
        assert_eq!(t("true").0, None);
        assert_eq!(t("{\"a\":1}").0, None);
        let z = t("\"2025-07-10T14:53:58.103234Z\"").0.expect("z");
        let plus = t("\"2025-07-10T14:53:58.103234+00:00\"").0.expect("plus");
        let naive = t("\"2025-07-10T14:53:58.103234\"").0.expect("naive");
        assert_eq!(z, plus);
        assert_eq!(z, naive);
        assert!((z - 1752159238.103234).abs() < 1e-6);
        assert_eq!(t("\"2023-04-06T19:55:21\"").0, Some(1680810921.0));
        assert_eq!(t("\"not a time\"").0, None);
    }

    #[test]
    fn rfc3339_output_is_utc_and_rounded_to_micros() {
        assert_eq!(
            secs_to_rfc3339(1704629915.775304).as_deref(),
            Some("2024-01-07T12:18:35.775304Z")
        );
        assert_eq!(
            secs_to_rfc3339(1.0).as_deref(),
            Some("1970-01-01T00:00:01Z")
        );
        assert_eq!(secs_to_rfc3339(f64::NAN), None);
        assert_eq!(secs_to_rfc3339(1e300), None);
    }

    #[test]
    fn moments_to_the_second_are_utc_with_a_z() {
        let t = DateTime::<Utc>::from_timestamp(1_704_629_915, 775_304_000).expect("time");
        assert_eq!(rfc3339_secs(t), "2024-01-07T12:18:35Z");
        assert!(now_rfc3339().ends_with('Z'));
    }
}
