//! Rendering frames for people: one row per occurrence, like `kubectl get events` but never
//! folded. Pure: a frame in, a line out.

use std::fmt::Write;

use crate::event::EventFrame;

/// How `tail` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The raw lines.
    Json,
    /// time, age, namespace, type, reason, object, count, message.
    Table,
    /// The table plus frame type, source, first seen and the Event's name.
    Wide,
}

const YELLOW: &str = "\x1b[33m";
const RESET: &str = "\x1b[0m";

/// (header, width) of the columns both tables start with; MESSAGE, last, takes the rest.
const COMMON: &[(&str, usize)] = &[
    ("TIME", 21),
    ("AGE", 6),
    ("NAMESPACE", 20),
    ("TYPE", 8),
    ("REASON", 22),
    ("OBJECT", 44),
    ("COUNT", 6),
];
/// What `wide` adds before the message.
const WIDE_EXTRA: &[(&str, usize)] = &[
    ("FRAME", 9),
    ("SOURCE", 28),
    ("FIRST SEEN", 21),
    ("NAME", 48),
];
const MESSAGE: (&str, usize) = ("MESSAGE", 0);

fn columns(format: Format) -> Vec<(&'static str, usize)> {
    let extra = if format == Format::Wide {
        WIDE_EXTRA
    } else {
        &[]
    };
    COMMON
        .iter()
        .chain(extra)
        .chain([&MESSAGE])
        .copied()
        .collect()
}

fn row(out: &mut String, cells: &[(&str, usize)]) {
    for (i, (text, width)) in cells.iter().enumerate() {
        out.push_str(text);
        if i + 1 < cells.len() {
            let used = text.chars().count();
            let pad = width.saturating_sub(used).max(1);
            out.extend(std::iter::repeat_n(' ', pad));
        }
    }
}

/// An event time to the second (`2026-11-22T10:00:05Z`): the TIME column's one width. A value
/// that is not a time is shown as it is.
fn to_seconds(time: &str) -> String {
    match time.parse::<jiff::Timestamp>() {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => time.to_string(),
    }
}

/// The header line for a table format.
pub fn header(format: Format) -> String {
    let mut out = String::new();
    row(&mut out, &columns(format));
    out
}

/// How long ago, as `kubectl get events` says it: `45s`, `12m`, `5h`, `3d`, `2y` (the unit
/// grows at 2 minutes, 2 hours, 2 days and 2 years). A time in the future is `0s`.
pub fn age(then: jiff::Timestamp, now: jiff::Timestamp) -> String {
    let s = now.as_second().saturating_sub(then.as_second()).max(0);
    match s {
        0..120 => format!("{s}s"),
        120..7_200 => format!("{}m", s / 60),
        7_200..172_800 => format!("{}h", s / 3600),
        172_800..63_072_000 => format!("{}d", s / 86_400),
        _ => format!("{}y", s / 31_536_000),
    }
}

/// One table row for a frame, its AGE counted to `now`. `color` highlights Warning events.
pub fn render(frame: &EventFrame<'_>, format: Format, color: bool, now: jiff::Timestamp) -> String {
    let e = &frame.object;
    let dash = |s: Option<&str>| s.filter(|s| !s.is_empty()).unwrap_or("-").to_string();
    let object = match (
        e.involved_object.kind.as_deref(),
        e.involved_object.name.as_deref(),
    ) {
        (Some(k), Some(n)) => format!("{}/{n}", k.to_ascii_lowercase()),
        (None, Some(n)) => n.to_string(),
        (Some(k), None) => k.to_ascii_lowercase(),
        (None, None) => "-".into(),
    };
    let count = e.occurrences().map_or("-".to_string(), |c| c.to_string());
    let message: String = e
        .message
        .as_deref()
        .unwrap_or("")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    // A DELETED frame is the Event object going away (its TTL), not another occurrence.
    let message = match frame.frame_type.as_ref() {
        "DELETED" => format!("(deleted) {}", message.trim()),
        _ => message.trim().to_string(),
    };
    let event_type = dash(e.event_type.as_deref());
    let time = e.time();
    let ago = time
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map_or("-".into(), |t| age(t, now));
    let mut cells: Vec<String> = vec![
        time.map_or("-".into(), to_seconds),
        ago,
        dash(e.metadata.namespace.as_deref()),
        event_type.clone(),
        dash(e.reason.as_deref()),
        object,
        count,
    ];
    if format == Format::Wide {
        let source = match (e.source.component.as_deref(), e.source.host.as_deref()) {
            (Some(c), Some(h)) if !h.is_empty() => format!("{c}, {h}"),
            (Some(c), _) if !c.is_empty() => c.to_string(),
            _ => dash(e.reporting_component.as_deref()),
        };
        cells.push(frame.frame_type.to_string());
        cells.push(source);
        cells.push(dash(
            e.first_timestamp.as_deref().or(e.event_time.as_deref()),
        ));
        cells.push(dash(e.metadata.name.as_deref()));
    }
    cells.push(message);
    let widths = columns(format);
    let pairs: Vec<(&str, usize)> = cells
        .iter()
        .map(String::as_str)
        .zip(widths.iter().map(|(_, w)| *w))
        .collect();
    let mut out = String::new();
    let warn = color && event_type == "Warning";
    if warn {
        out.push_str(YELLOW);
    }
    row(&mut out, &pairs);
    if warn {
        let _ = write!(out, "{RESET}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_yellow_only_with_color() {
        let line = include_str!("../../tests/data/fixtures/frames.jsonl")
            .lines()
            .next()
            .unwrap();
        let f = EventFrame::parse(line.as_bytes()).unwrap();
        let now = "2022-05-19T19:40:11Z".parse().unwrap();
        let plain = render(&f, Format::Table, false, now);
        let colored = render(&f, Format::Table, true, now);
        assert!(!plain.contains('\x1b'));
        assert_eq!(colored, format!("{YELLOW}{plain}{RESET}"));
        assert!(
            plain.starts_with("2022-05-19T19:35:11Z 5m    probes              Warning Unhealthy"),
            "{plain}"
        );
        assert!(plain.contains("pod/app-target-6664868868-b84vm"));
    }

    #[test]
    fn missing_fields_are_dashes_and_long_cells_keep_a_space() {
        let f = EventFrame::parse(br#"{"type":"ADDED","object":{"metadata":{"namespace":"a-namespace-name-longer-than-its-column"},"message":"two\nlines"}}"#).unwrap();
        let r = render(&f, Format::Table, true, jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(
            r,
            "-                    -     a-namespace-name-longer-than-its-column -       -                     -                                           -     two lines"
        );
        assert!(header(Format::Wide).contains("FIRST SEEN"));
    }

    #[test]
    fn ages_read_as_kubectl_says_them() {
        let now: jiff::Timestamp = "2026-11-29T12:00:00Z".parse().unwrap();
        let ago = |secs: i64| age(now - jiff::SignedDuration::from_secs(secs), now);
        assert_eq!(ago(0), "0s");
        assert_eq!(ago(119), "119s");
        assert_eq!(ago(120), "2m");
        assert_eq!(ago(7_199), "119m");
        assert_eq!(ago(7_200), "2h");
        assert_eq!(ago(172_800), "2d");
        assert_eq!(ago(63_072_000), "2y");
        assert_eq!(ago(-30), "0s", "the future");
    }
}
