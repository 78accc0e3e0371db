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

/// Narrower terminals get lines this long.
const MIN_WIDTH: usize = 60;

/// How the text is drawn.
pub struct Style {
    /// Columns available (at least `MIN_WIDTH`, 60, are used).
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

/// A span as `0s`, `45s`, `1m22s`, `45m`, `2h30m`, `3d4h`: to the second under an hour.
fn span(secs: i64) -> String {
    let secs = secs.max(0);
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (d, h, m, s) {
        (0, 0, 0, s) => format!("{s}s"),
        (0, 0, m, 0) => format!("{m}m"),
        (0, 0, m, s) => format!("{m}m{s}s"),
        (0, h, 0, _) => format!("{h}h"),
        (0, h, m, _) => format!("{h}h{m}m"),
        (d, 0, _, _) => format!("{d}d"),
        (d, h, _, _) => format!("{d}d{h}h"),
    }
}

/// The summary for a person: the window, the counts, top reasons, top objects by Warnings,
/// namespaces and a timeline bar chart, each line at most `style.width` columns.
pub fn text(s: &Summary, style: &Style) -> String {
    let w = style.width.max(MIN_WIDTH);
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
    overview(&mut out, s, w, &warn);
    lists(&mut out, s, style, w, &warn);
    timeline(&mut out, s, style, w);
    out
}

/// A labelled line of parts (text, is a Warning) joined by `sep`, wrapped under the label when
/// it would pass `w` columns.
fn labelled(
    out: &mut String,
    label: &str,
    parts: &[(String, bool)],
    sep: &str,
    w: usize,
    warn: &dyn Fn(String, bool) -> String,
) {
    let indent = 10;
    let _ = write!(out, "{label:<indent$}");
    let mut col = indent;
    for (i, (part, is_warning)) in parts.iter().enumerate() {
        let lead = if i == 0 { "" } else { sep };
        let len = part.chars().count();
        if i > 0 && col + lead.len() + len > w {
            let _ = write!(out, "{}\n{:indent$}", lead.trim_end(), "");
            col = indent;
        } else {
            out.push_str(lead);
            col += lead.len();
        }
        out.push_str(&warn(part.clone(), *is_warning));
        col += len;
    }
    out.push('\n');
}

/// The window, the counts, what was not counted.
fn overview(out: &mut String, s: &Summary, w: usize, warn: &dyn Fn(String, bool) -> String) {
    let window = match (s.from, s.to) {
        (Some(from), Some(to)) => {
            let length = to.as_second() - from.as_second();
            vec![
                (from.to_string(), false),
                (format!(".. {to}"), false),
                (format!("({})", span(length)), false),
            ]
        }
        _ => vec![("- (no occurrence has a time)".to_string(), false)],
    };
    labelled(out, "WINDOW", &window, " ", w, warn);
    let b = &s.by_type;
    let mut kinds = vec![
        (format!("{} occurrences:", s.occurrences), false),
        (format!("{} Normal,", b.normal), false),
        (format!("{} Warning", b.warning), true),
    ];
    let updates = format!("in {} updates", s.frames);
    if b.other > 0 {
        kinds[2].0.push(',');
        kinds.push((format!("{} other", b.other), false));
    }
    let last = kinds.len() - 1;
    kinds[last].0.push(',');
    kinds.push((updates, false));
    labelled(out, "EVENTS", &kinds, " ", w, warn);
    let n = &s.not_counted;
    let mut skipped = vec![
        (format!("{} DELETED", n.deleted), false),
        (format!("{} relist repeats", n.relist_repeats), false),
        (format!("{} invalid lines", n.invalid_lines), false),
    ];
    if s.approximate {
        skipped.push(("counts approximate (too many distinct keys)".into(), false));
    }
    labelled(out, "SKIPPED", &skipped, ", ", w, warn);
}

/// Top reasons, top objects by Warnings, namespaces.
fn lists(
    out: &mut String,
    s: &Summary,
    style: &Style,
    w: usize,
    warn: &dyn Fn(String, bool) -> String,
) {
    // As wide as the longest reason shown (the counts stay next to it), within the width.
    let longest = s
        .top_reasons
        .iter()
        .map(|r| dash(&r.reason).chars().count());
    let reason_w = (longest.max().unwrap_or(0).max("REASON".len()) + 2)
        .min(w.saturating_sub(9 + 8 + 8 + 11))
        .max(8);
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

    let longest = s
        .namespaces
        .iter()
        .map(|c| dash(&c.namespace).chars().count());
    let ns_w = (longest.max().unwrap_or(0).max("NAMESPACE".len()) + 2)
        .min(w.saturating_sub(20))
        .max(8);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::Tally;

    fn summary() -> Summary {
        let line = |ty: &str, reason: &str, rv: u32, at: &str| {
            format!(
                r#"{{"type":"ADDED","object":{{"metadata":{{"namespace":"a-very-long-namespace-name-that-does-not-fit","uid":"u{rv}","resourceVersion":"{rv}"}},"involvedObject":{{"kind":"Pod","namespace":"ns","name":"a-pod-with-a-name-far-longer-than-any-terminal-column-allows"}},"reason":"{reason}","type":"{ty}","lastTimestamp":"{at}"}}}}"#
            )
        };
        let mut t = Tally::new(10);
        let lines = [
            line(
                "Warning",
                "BackOffWithAReasonNameLongerThanTheColumn",
                1,
                "2026-11-29T10:00:00Z",
            ),
            line("Normal", "Pulled", 2, "2026-11-29T11:30:00Z"),
        ];
        for l in &lines {
            let frame = crate::event::EventFrame::parse(l.as_bytes()).unwrap();
            t.add(crate::summary::Occurrence::of(&frame));
        }
        t.finish(10, 24)
    }

    fn style(width: usize, color: bool) -> Style {
        Style {
            width,
            color,
            now: "2026-11-29T12:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn warnings_are_coloured_only_when_asked() {
        let s = summary();
        let plain = text(&s, &style(100, false));
        assert!(!plain.contains('\x1b'));
        let coloured = text(&s, &style(100, true));
        let warning_row = coloured.lines().find(|l| l.contains("BackOff")).unwrap();
        assert!(warning_row.starts_with(YELLOW), "{warning_row}");
        let normal_row = coloured.lines().find(|l| l.contains("Pulled")).unwrap();
        assert!(!normal_row.contains('\x1b'), "{normal_row}");
    }

    #[test]
    fn every_line_fits_the_width_and_long_names_are_cut_visibly() {
        let s = summary();
        for width in [60, 80, 132] {
            let out = text(&s, &style(width, false));
            for line in out.lines() {
                assert!(line.chars().count() <= width, "{width}: {line:?}");
            }
            if width <= 80 {
                assert!(out.contains('…'), "{out}");
            }
        }
        let wide = text(&s, &style(132, false));
        let narrow = text(&s, &style(60, false));
        let bar = |t: &str| {
            t.lines()
                .map(|l| l.matches(NORMAL_BAR).count())
                .max()
                .unwrap()
        };
        assert!(bar(&wide) > bar(&narrow), "the bars use the width");
    }

    #[test]
    fn on_a_wide_terminal_each_count_stays_next_to_its_name() {
        let s = summary();
        let section = |out: &str, name: &str| -> Vec<String> {
            let rows = out.split(name).nth(1).unwrap().lines().skip(1);
            rows.take_while(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        };
        // Wider than the names need: a wider terminal moves no count away from its name.
        let (wide, wider) = (text(&s, &style(132, false)), text(&s, &style(200, false)));
        for name in ["TOP REASONS", "NAMESPACES"] {
            assert_eq!(section(&wide, name), section(&wider, name), "{name}");
            let header = &section(&wider, name)[0];
            assert!(header.len() < 120, "{name}: {header:?}");
        }
    }

    #[test]
    fn spans_read_to_the_second_under_an_hour() {
        assert_eq!(span(0), "0s");
        assert_eq!(span(1), "1s");
        assert_eq!(span(82), "1m22s");
        assert_eq!(span(120), "2m");
        assert_eq!(span(3600), "1h");
        assert_eq!(span(5400), "1h30m");
        assert_eq!(span(86_400 + 7200), "1d2h");
    }

    #[test]
    fn nothing_selected_says_so() {
        let s = Tally::new(10).finish(10, 24);
        assert_eq!(
            text(&s, &style(80, false)),
            "No occurrences in the files read (with the selection given).\n"
        );
        assert!(json(&s).contains("\"occurrences\": 0"));
    }
}
