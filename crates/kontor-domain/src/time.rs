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

/// Parses an instant given as epoch milliseconds (number or numeric string), an RFC 3339
/// timestamp, or a bare date (taken as midnight UTC).
pub fn parse_instant(s: &str) -> Option<Millis> {
    let s = s.trim();
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
}
