//! Times and durations as people type them: RFC 3339, relative times (`10m`, `-2h`, `+5m`) and
//! durations (`30s`, `2h30m`, `1d`). Used by the filter language and the command line.

use jiff::{SignedDuration, Timestamp};

/// RFC 3339 (`2026-11-22T10:00:00Z`), or relative to `now`: `-10m`, `-2h30m`, `-1d` (past; the
/// sign may be left out) or `+5m` (future). Units: s, m, h, d.
pub fn parse_time(s: &str, now: Timestamp) -> Option<Timestamp> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Some(t);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => (-1, s),
    };
    let secs = i64::try_from(parse_duration(rest)?.as_secs()).ok()?;
    now.checked_add(SignedDuration::from_secs(sign * secs)).ok()
}

/// A duration such as `30s`, `5m`, `2h30m`, `1d` or `250ms`.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let mut millis: u64 = 0;
    let mut digits = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1
            }
            's' => 1000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            _ => return None,
        };
        let n: u64 = digits.parse().ok()?;
        millis = millis.checked_add(n.checked_mul(unit)?)?;
        digits.clear();
    }
    if !digits.is_empty() || s.is_empty() || millis / 1000 > i64::MAX as u64 {
        return None;
    }
    Some(std::time::Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-11-22T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn relative_and_absolute_times() {
        let t = |s| parse_time(s, now()).map(|t| t.to_string());
        assert_eq!(t("-10m").as_deref(), Some("2026-11-22T11:50:00Z"));
        assert_eq!(t("10m").as_deref(), Some("2026-11-22T11:50:00Z"));
        assert_eq!(t("+1h").as_deref(), Some("2026-11-22T13:00:00Z"));
        assert_eq!(t("-1d2h").as_deref(), Some("2026-11-21T10:00:00Z"));
        assert_eq!(
            t("2026-11-22T10:00:00.123456Z").as_deref(),
            Some("2026-11-22T10:00:00.123456Z")
        );
        for bad in [
            "",
            "-",
            "10",
            "10x",
            "m",
            "-99999999999999999999d",
            "yesterday",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("250ms"),
            Some(std::time::Duration::from_millis(250))
        );
        assert_eq!(
            parse_duration("1m30s500ms"),
            Some(std::time::Duration::from_millis(90_500))
        );
        assert_eq!(parse_duration("5mm"), None);
        let secs = |s| parse_duration(s).map(|d| d.as_secs());
        assert_eq!(secs("30s"), Some(30));
        assert_eq!(secs("2h30m"), Some(9000));
        assert_eq!(secs("1d"), Some(86400));
        for bad in ["", "5", "m", "5x", "-5m", "99999999999999999999d"] {
            assert_eq!(secs(bad), None, "{bad}");
        }
    }
}
