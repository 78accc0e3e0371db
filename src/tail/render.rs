//! Rendering frames for people: one row per occurrence, like `kubectl get events` but never
//! folded. Pure: a frame in, a line out.

use crate::event::EventFrame;
use crate::occurrence::{Occurrences, Update};

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

/// (header, widest) of the columns both tables start with; MESSAGE, last, takes the rest. A
/// column is as wide as its widest value (or header) up to "widest"; a longer value is cut with
/// `…`, so that it never pushes the columns after it.
const COMMON: &[(&str, usize)] = &[
    ("TIME", 20),
    ("AGE", 5),
    ("NAMESPACE", 32),
    ("TYPE", 7),
    ("REASON", 32),
    ("OBJECT", 60),
    ("COUNT", 6),
];
/// What `wide` adds before the message: first, NEW, the occurrences this frame added (`+N`, by
/// the occurrence rule: the growth of COUNT since the Event's previous frame).
const WIDE_EXTRA: &[(&str, usize)] = &[
    ("NEW", 7),
    ("FRAME", 8),
    ("SOURCE", 32),
    ("FIRST SEEN", 20),
    ("NAME", 64),
];
/// Column widths while following, where no row to come can be seen: the widths of a typical
/// cluster's values (namespace, reason and object names), the rest cut with `…`.
const FOLLOW_WIDTHS: &[usize] = &[20, 5, 19, 7, 21, 43, 5, 5, 8, 27, 20, 47];
/// Events whose last count the NEW column remembers (those not seen for longest forgotten).
const EVENTS_REMEMBERED: usize = 1 << 17;
/// Rows read before the columns are sized to them (when not following): memory for this many
/// rows at most, whatever the files hold.
pub const SIZED_FROM_ROWS: usize = 1000;

fn columns(format: Format) -> Vec<(&'static str, usize)> {
    let extra = if format == Format::Wide {
        WIDE_EXTRA
    } else {
        &[]
    };
    COMMON.iter().chain(extra).copied().collect()
}

/// One table row's cells (MESSAGE last), before it is laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub cells: Vec<String>,
    /// A Warning event (yellow when colours are on).
    pub warning: bool,
    /// What the occurrence rule needs, for the NEW column (`wide`).
    pub update: Option<Update>,
}

/// Lays rows out in columns: sized to the first `SIZED_FROM_ROWS` rows when not following
/// (they wait until then, or the end), fixed while following. Pure: rows in, text out.
pub struct Table {
    format: Format,
    headers: bool,
    color: bool,
    follow: bool,
    /// The columns' widths once settled.
    widths: Option<Vec<usize>>,
    waiting: Vec<Row>,
    /// The Events' last counts, for NEW.
    occurrences: Occurrences,
}

impl Table {
    pub fn new(format: Format, headers: bool, color: bool, follow: bool) -> Self {
        Self {
            format,
            headers,
            color,
            follow,
            widths: None,
            waiting: Vec::new(),
            occurrences: Occurrences::new(EVENTS_REMEMBERED),
        }
    }

    /// Takes a row (in file order); appends to `out` what can be shown now.
    pub fn push(&mut self, mut row: Row, out: &mut Vec<u8>) {
        if let Some(update) = row.update.take()
            && let Some(cell) = row.cells.get_mut(COMMON.len())
        {
            let added = self.occurrences.count(update).occurrences;
            *cell = format!("+{added}");
        }
        match &self.widths {
            Some(widths) => line(out, &row, widths, self.color),
            None if self.follow => {
                self.settle(out);
                self.push(row, out);
            }
            None => {
                self.waiting.push(row);
                if self.waiting.len() >= SIZED_FROM_ROWS {
                    self.settle(out);
                }
            }
        }
    }

    /// Shows what waits (and the header, even with no row). Called once reading ended well.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.widths.is_none() {
            self.settle(out);
        }
    }

    /// Fixes the widths and writes the header and the rows that waited.
    fn settle(&mut self, out: &mut Vec<u8>) {
        let columns = columns(self.format);
        let widths: Vec<usize> = if self.follow {
            let wide = columns.len() > COMMON.len();
            let follow: Vec<usize> = FOLLOW_WIDTHS[..COMMON.len()].to_vec();
            let extra = if wide {
                &FOLLOW_WIDTHS[COMMON.len()..]
            } else {
                &[]
            };
            follow.into_iter().chain(extra.iter().copied()).collect()
        } else {
            columns
                .iter()
                .enumerate()
                .map(|(i, (name, widest))| {
                    let content = self
                        .waiting
                        .iter()
                        .map(|r| r.cells.get(i).map_or(0, |c| c.chars().count()))
                        .max()
                        .unwrap_or(0);
                    content.max(name.len()).min(*widest)
                })
                .collect()
        };
        if self.headers {
            let mut names: Vec<String> = columns.iter().map(|(n, _)| n.to_string()).collect();
            names.push("MESSAGE".into());
            let header = Row {
                cells: names,
                warning: false,
                update: None,
            };
            line(out, &header, &widths, false);
        }
        for row in std::mem::take(&mut self.waiting) {
            line(out, &row, &widths, self.color);
        }
        self.widths = Some(widths);
    }
}

/// One laid-out line: each cell cut to its column with `…` and padded, one space between
/// columns; the last cell as it is.
fn line(out: &mut Vec<u8>, row: &Row, widths: &[usize], color: bool) {
    let mut text = String::new();
    let warn = color && row.warning;
    if warn {
        text.push_str(YELLOW);
    }
    let last = row.cells.len().saturating_sub(1);
    for (i, cell) in row.cells.iter().enumerate() {
        if i == last {
            text.push_str(cell);
            break;
        }
        let width = widths.get(i).copied().unwrap_or(0);
        let used = cell.chars().count();
        if used > width {
            text.extend(cell.chars().take(width.saturating_sub(1)));
            text.push('…');
        } else {
            text.push_str(cell);
            text.extend(std::iter::repeat_n(' ', width - used));
        }
        text.push(' ');
    }
    if warn {
        text.push_str(RESET);
    }
    text.push('\n');
    out.extend_from_slice(text.as_bytes());
}

/// An event time to the second (`2026-11-22T10:00:05Z`): the TIME column's one width. A value
/// that is not a time is shown as it is.
fn to_seconds(time: &str) -> String {
    match time.parse::<jiff::Timestamp>() {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => time.to_string(),
    }
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

/// One table row's cells for a frame, its AGE counted to `now`.
pub fn row(frame: &EventFrame<'_>, format: Format, now: jiff::Timestamp) -> Row {
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
    let message = match frame.kind() {
        Some(crate::frame::DataKind::Deleted) => format!("(deleted) {}", message.trim()),
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
    let mut update = None;
    if format == Format::Wide {
        // Filled in file order by the table: the growth of COUNT since the Event's last frame.
        cells.push("+?".into());
        update = Some(Update::of(frame));
        let source = match (e.source.component.as_deref(), e.source.host.as_deref()) {
            (Some(c), Some(h)) if !h.is_empty() => format!("{c}, {h}"),
            (Some(c), _) if !c.is_empty() => c.to_string(),
            _ => dash(e.reporting_component.as_deref()),
        };
        cells.push(frame.frame_type.to_string());
        cells.push(source);
        // To the second, as TIME.
        let first = e.first_timestamp.as_deref().or(e.event_time.as_deref());
        cells.push(
            first
                .filter(|t| !t.is_empty())
                .map_or("-".into(), to_seconds),
        );
        cells.push(dash(e.metadata.name.as_deref()));
    }
    cells.push(message);
    Row {
        cells,
        warning: event_type == "Warning",
        update,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn laid_out(rows: &[Row], format: Format, color: bool, follow: bool) -> String {
        let mut table = Table::new(format, true, color, follow);
        let mut out = Vec::new();
        for r in rows {
            table.push(r.clone(), &mut out);
        }
        table.finish(&mut out);
        String::from_utf8(out).unwrap()
    }

    fn fixture_row(i: usize) -> Row {
        let line = include_str!("../../tests/data/fixtures/frames.jsonl")
            .lines()
            .nth(i)
            .unwrap();
        let f = EventFrame::parse(line.as_bytes()).unwrap();
        row(&f, Format::Table, "2022-05-19T19:40:11Z".parse().unwrap())
    }

    #[test]
    fn warnings_are_yellow_only_with_color() {
        let r = fixture_row(0);
        assert!(r.warning);
        let plain = laid_out(std::slice::from_ref(&r), Format::Table, false, false);
        let colored = laid_out(std::slice::from_ref(&r), Format::Table, true, false);
        assert!(!plain.contains('\x1b'));
        let (header, plain_row) = plain.split_once('\n').unwrap();
        assert!(
            header.starts_with("TIME                 AGE NAMESPACE TYPE    REASON"),
            "{header}"
        );
        assert!(colored.contains(&format!(
            "{YELLOW}{}{RESET}",
            plain_row.trim_end_matches('\n')
        )));
        assert!(
            plain_row.starts_with("2022-05-19T19:35:11Z 5m  probes    Warning Unhealthy"),
            "{plain_row}"
        );
        assert!(plain_row.contains("pod/app-target-6664868868-b84vm"));
    }

    #[test]
    fn columns_fit_their_content_and_a_value_past_its_cap_is_cut_not_pushing_the_rest() {
        let f = EventFrame::parse(br#"{"type":"ADDED","object":{"metadata":{"namespace":"payments-platform-production-eu-west-1-blue-green"},"reason":"FailedCreatePodSandBox","message":"two\nlines"}}"#).unwrap();
        let long = row(&f, Format::Table, jiff::Timestamp::UNIX_EPOCH);
        let g = EventFrame::parse(br#"{"type":"ADDED","object":{"metadata":{"namespace":"a"},"reason":"B","message":"m"}}"#).unwrap();
        let short = row(&g, Format::Table, jiff::Timestamp::UNIX_EPOCH);
        let text = laid_out(&[long.clone(), short.clone()], Format::Table, false, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1],
            "-    -   payments-platform-production-eu… -    FailedCreatePodSandBox -      -     two lines"
        );
        // Every row's message starts at the same column (counted in characters).
        let col = |l: &str, text: &str| l[..l.find(text).unwrap()].chars().count();
        let message = col(lines[0], "MESSAGE");
        assert_eq!(col(lines[1], "two lines"), message, "{text}");
        assert_eq!(lines[2].chars().count(), message + 1, "{text}");
        // Following, the widths are fixed: a long value is cut at the follow width.
        let text = laid_out(&[long], Format::Table, false, true);
        assert!(
            text.lines().nth(1).unwrap().contains("payments-platform-…"),
            "{text}"
        );
        assert!(text.contains("FailedCreatePodSandB… "), "{text}");
    }

    #[test]
    fn nothing_shows_before_the_columns_are_sized_and_an_empty_table_has_its_header() {
        let mut table = Table::new(Format::Wide, true, false, false);
        let mut out = Vec::new();
        table.push(fixture_row(0), &mut out);
        assert!(out.is_empty(), "the rows wait for the columns' size");
        table.finish(&mut out);
        assert!(String::from_utf8(out).unwrap().starts_with("TIME"));
        let mut empty = Vec::new();
        Table::new(Format::Wide, true, false, false).finish(&mut empty);
        let header = String::from_utf8(empty).unwrap();
        assert!(
            header.contains("FIRST SEEN") && header.ends_with("MESSAGE\n"),
            "{header}"
        );
        let mut bare = Vec::new();
        Table::new(Format::Table, false, false, false).finish(&mut bare);
        assert!(bare.is_empty(), "--no-headers");
    }

    #[test]
    fn the_wide_view_shows_what_each_frame_added_by_the_occurrence_rule() {
        let frame = |rv: u32, count: u32| {
            format!(
                r#"{{"type":"MODIFIED","object":{{"metadata":{{"uid":"u","resourceVersion":"{rv}"}},"count":{count}}}}}"#
            )
        };
        let rows: Vec<Row> = [frame(1, 1), frame(2, 26), frame(2, 26), frame(3, 27)]
            .iter()
            .map(|l| {
                let f = EventFrame::parse(l.as_bytes()).unwrap();
                row(&f, Format::Wide, jiff::Timestamp::UNIX_EPOCH)
            })
            .collect();
        let text = laid_out(&rows, Format::Wide, false, false);
        let new: Vec<&str> = text
            .lines()
            .map(|l| l.split_whitespace().nth(7).unwrap())
            .collect();
        assert_eq!(new, ["NEW", "+1", "+25", "+0", "+1"], "{text}");
        let counts: Vec<&str> = text
            .lines()
            .map(|l| l.split_whitespace().nth(6).unwrap())
            .collect();
        assert_eq!(
            counts,
            ["COUNT", "1", "26", "26", "27"],
            "COUNT stays the Event's count"
        );
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
