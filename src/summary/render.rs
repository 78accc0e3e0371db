//! Drawing a [`Summary`]: text sized to a terminal's width (colour only when asked), or one
//! JSON object.

use std::fmt::Write;

use jiff::Timestamp;

use super::tally::Summary;
use crate::tail::age;

const YELLOW: &str = "\x1b[33m";
const RESET: &str = "\x1b[0m";
/// The timeline's glyphs: Normal, then Warning occurrences.
const NORMAL_BAR: char = '█';
const WARNING_BAR: char = '▒';

/// How the text is drawn.
pub struct Style {
    /// Columns available (at least 40 are used).
    pub width: usize,
    /// Warnings in colour (a terminal, NO_COLOR unset).
    pub color: bool,
    /// What LAST SEEN counts from.
    pub now: Timestamp,
}

/// The summary as one pretty-printed JSON object (docs/guide.md names every field).
pub fn json(summary: &Summary) -> String {
    let mut s = serde_json::to_string_pretty(summary).unwrap_or_default();
    s.push('\n');
    s
}

/// `s` cut to `n` characters, the cut marked with `…`.
fn fit(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// A span as `2h30m`, `3d4h`, `45m`.
fn span(secs: i64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h, m) {
        (0, 0, m) => format!("{}m", m.max(1)),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h{m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d{h}h"),
    }
}

/// The summary for a person: the window, the counts, top reasons, top objects by Warnings,
/// namespaces and a timeline bar chart, each line at most `style.width` columns.
pub fn text(s: &Summary, style: &Style) -> String {
    let w = style.width.max(40);
    let warn = |text: String, is: bool| {
        if style.color && is {
            format!("{YELLOW}{text}{RESET}")
        } else {
            text
        }
    };
    let mut out = String::new();
    if s.occurrences == 0 {
        let _ = writeln!(
            out,
            "No occurrences in the files read (with the selection given)."
        );
        return out;
    }
    overview(&mut out, s, &warn);
    lists(&mut out, s, style, w, &warn);
    timeline(&mut out, s, style, w);
    out
}

/// The window, the counts, what was not counted.
fn overview(out: &mut String, s: &Summary, warn: &dyn Fn(String, bool) -> String) {
    match (s.from, s.to) {
        (Some(from), Some(to)) => {
            let length = to.as_second() - from.as_second() + 1;
            let _ = writeln!(out, "WINDOW    {from} .. {to} ({})", span(length));
        }
        _ => out.push_str("WINDOW    - (no occurrence has a time)\n"),
    }
    let b = &s.by_type;
    let mut kinds = format!(
        "{} Normal, {}",
        b.normal,
        warn(format!("{} Warning", b.warning), true)
    );
    if b.other > 0 {
        let _ = write!(kinds, ", {} other", b.other);
    }
    let _ = writeln!(out, "EVENTS    {} occurrences: {kinds}", s.occurrences);
    let n = &s.not_counted;
    let _ = writeln!(
        out,
        "SKIPPED   {} DELETED frames, {} relist repeats, {} invalid lines{}",
        n.deleted,
        n.relist_repeats,
        n.invalid_lines,
        if s.approximate {
            " (counts approximate: too many distinct keys)"
        } else {
            ""
        }
    );
}

/// Top reasons, top objects by Warnings, namespaces.
fn lists(
    out: &mut String,
    s: &Summary,
    style: &Style,
    w: usize,
    warn: &dyn Fn(String, bool) -> String,
) {
    let reason_w = w.saturating_sub(9 + 8 + 8 + 11).max(8);
    let _ = writeln!(out, "\nTOP REASONS");
    let _ = writeln!(
        out,
        "{:<9}{:<reason_w$}{:>8}{:>8}  LAST SEEN",
        "TYPE", "REASON", "COUNT", "SHARE"
    );
    for r in &s.top_reasons {
        let seen = r.last_seen.map_or("-".into(), |t| age(t, style.now));
        let line = format!(
            "{:<9}{:<reason_w$}{:>8}{:>7.1}%  {seen}",
            fit(dash(&r.event_type), 8),
            fit(dash(&r.reason), reason_w - 1),
            r.count,
            r.share
        );
        let _ = writeln!(out, "{}", warn(line, r.event_type == "Warning"));
    }

    let object_w = w.saturating_sub(10 + 8 + 1).max(8);
    let _ = writeln!(out, "\nTOP OBJECTS BY WARNINGS");
    let _ = writeln!(out, "{:>8}{:>8}  OBJECT", "WARNINGS", "COUNT");
    for o in &s.top_objects {
        let kind = dash(&o.kind).to_ascii_lowercase();
        let object = match o.namespace.as_str() {
            "" => format!("{kind}/{}", dash(&o.name)),
            ns => format!("{kind}/{ns}/{}", dash(&o.name)),
        };
        let line = format!(
            "{:>8}{:>8}  {}",
            o.warnings,
            o.count,
            fit(&object, object_w)
        );
        let _ = writeln!(out, "{}", warn(line, o.warnings > 0));
    }

    let ns_w = w.saturating_sub(20).max(8);
    let _ = writeln!(out, "\nNAMESPACES");
    let _ = writeln!(
        out,
        "{:<ns_w$}{:>10}{:>10}",
        "NAMESPACE", "COUNT", "WARNINGS"
    );
    for c in &s.namespaces {
        let _ = writeln!(
            out,
            "{:<ns_w$}{:>10}{:>10}",
            fit(dash(&c.namespace), ns_w - 1),
            c.count,
            c.warnings
        );
    }
}

/// One row per bucket: its start, a bar of Normal then Warning occurrences scaled to the
/// busiest bucket, and the counts.
fn timeline(out: &mut String, s: &Summary, style: &Style, w: usize) {
    let size = s.bucket_seconds;
    let one_day = s
        .timeline
        .first()
        .zip(s.timeline.last())
        .is_some_and(|(a, b)| {
            a.start.to_zoned(jiff::tz::TimeZone::UTC).date()
                == b.start.to_zoned(jiff::tz::TimeZone::UTC).date()
        });
    let label = |t: Timestamp| {
        let z = t.to_zoned(jiff::tz::TimeZone::UTC);
        if size >= 86_400 {
            z.strftime("%Y-%m-%d").to_string()
        } else if one_day {
            z.strftime("%H:%M").to_string()
        } else {
            z.strftime("%m-%d %H:%M").to_string()
        }
    };
    let _ = writeln!(
        out,
        "\nTIMELINE  (UTC, one row per {}; {NORMAL_BAR} Normal, {WARNING_BAR} Warning)",
        span(size)
    );
    let label_w = s.timeline.first().map_or(5, |b| label(b.start).len());
    let bar_w = w.saturating_sub(label_w + 2 + 18).max(10);
    let most = s.timeline.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    let cells = |n: u64| -> usize {
        let c = (n as f64 * bar_w as f64 / most as f64).round() as usize;
        if n > 0 { c.max(1) } else { 0 }
    };
    for b in &s.timeline {
        let warnings = cells(b.warnings);
        let normal = cells(b.count - b.warnings).min(bar_w - warnings.min(bar_w));
        let mut bar: String = std::iter::repeat_n(NORMAL_BAR, normal).collect();
        let warning_bar: String = std::iter::repeat_n(WARNING_BAR, warnings).collect();
        if style.color && warnings > 0 {
            let _ = write!(bar, "{YELLOW}{warning_bar}{RESET}");
        } else {
            bar.push_str(&warning_bar);
        }
        let pad = bar_w.saturating_sub(normal + warnings);
        let _ = writeln!(
            out,
            "{}  {bar}{:pad$}{:>9}{:>9}",
            label(b.start),
            "",
            b.count,
            format!("{}W", b.warnings)
        );
    }
}
