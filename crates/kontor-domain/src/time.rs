//! Instants on the wire: ISO-8601 UTC with milliseconds (`2024-05-01T12:34:56.789Z`).

use chrono::{DateTime, NaiveDate, SecondsFormat, TimeZone, Utc};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

pub fn now_ms() -> Millis {
    Utc::now().timestamp_millis()
}

pub fn iso(ms: Millis) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => "1970-01-01T00:00:00.000Z".to_string(),
    }
}

/// The instants kontor stores: years 0001 to 9999, the range ISO 8601's four-digit years
/// (and every HubSpot client) can write. Anything else is refused, never stored as another
/// instant.
pub const MIN_MS: Millis = -62_135_596_800_000; // 0001-01-01T00:00:00.000Z
pub const MAX_MS: Millis = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

/// Parses an instant given as epoch milliseconds (number or numeric string), an RFC 3339
/// timestamp, or a bare date (taken as midnight UTC); `None` for anything else, and for
/// instants outside [`MIN_MS`]..=[`MAX_MS`].
pub fn parse_instant(s: &str) -> Option<Millis> {
    let ms = parse_any(s.trim())?;
    (MIN_MS..=MAX_MS).contains(&ms).then_some(ms)
}

fn parse_any(s: &str) -> Option<Millis> {
    if s.is_empty() {
        return None;
    }
    if let Ok(n) = s.parse::<i64>() {
        return Some(n);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc).timestamp_millis());
    }
    // HubSpot clients also send `2024-05-01T12:00:00` without an offset; treat as UTC.
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(t.and_utc().timestamp_millis());
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis());
    }
    None
}

pub fn date_string(ms: Millis) -> Option<String> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_iso() {
        let ms = 1_714_566_896_789;
        assert_eq!(iso(ms), "2024-05-01T12:34:56.789Z");
        assert_eq!(parse_instant(&iso(ms)), Some(ms));
        assert_eq!(parse_instant("1714566896789"), Some(ms));
        assert_eq!(parse_instant("2024-05-01"), Some(1_714_521_600_000));
        assert_eq!(parse_instant("yesterday"), None);
    }

    #[test]
    fn instants_outside_years_1_to_9999_are_refused() {
        assert_eq!(iso(MIN_MS), "0001-01-01T00:00:00.000Z");
        assert_eq!(iso(MAX_MS), "9999-12-31T23:59:59.999Z");
        assert_eq!(parse_instant(&MAX_MS.to_string()), Some(MAX_MS));
        assert_eq!(parse_instant(&(MAX_MS + 1).to_string()), None);
        assert_eq!(parse_instant(&(MIN_MS - 1).to_string()), None);
        assert_eq!(parse_instant("99999999999999999"), None);
        assert_eq!(parse_instant(&i64::MIN.to_string()), None);
        assert_eq!(parse_instant("+10000-01-01T00:00:00Z"), None);
        assert_eq!(parse_instant("9999-12-31"), Some(MAX_MS - 86_399_999));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// Whatever a client sends, an instant is refused or lies in range, and prints as an
        /// ISO 8601 instant that parses back to itself.
        #[test]
        fn any_text_is_an_instant_in_range_or_refused(
            s in proptest::prop_oneof![
                ".{0,40}",
                "[+-]?[0-9]{1,20}",
                "[+-]?[0-9]{4,6}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})?)?",
            ]
        ) {
            if let Some(ms) = parse_instant(&s) {
                proptest::prop_assert!((MIN_MS..=MAX_MS).contains(&ms), "{s:?} -> {ms}");
                proptest::prop_assert_eq!(parse_instant(&iso(ms)), Some(ms));
            }
        }
    }
}
