//! A borrowed, typed view of a watch frame's Event: the fields the filter language and the
//! `tail` viewer read. Parsed in one pass; managedFields and anything else is skipped.

use std::borrow::Cow;

use serde::Deserialize;

use crate::frame::{DataKind, Facts, Frame, FrameError};

type Str<'a> = Option<Cow<'a, str>>;

// `expecting`: what a message about a bad line says is expected, instead of a type's name.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a watch frame, {\"type\":…,\"object\":{…}}")]
pub struct EventFrame<'a> {
    #[serde(rename = "type", borrow)]
    pub frame_type: Cow<'a, str>,
    #[serde(borrow, default)]
    pub object: Event<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an Event object")]
pub struct Event<'a> {
    #[serde(borrow, default)]
    pub metadata: Meta<'a>,
    #[serde(borrow, default)]
    pub involved_object: ObjectRef<'a>,
    #[serde(borrow, default)]
    pub reason: Str<'a>,
    #[serde(borrow, default)]
    pub message: Str<'a>,
    #[serde(borrow, default)]
    pub source: Source<'a>,
    #[serde(borrow, default)]
    pub first_timestamp: Str<'a>,
    #[serde(borrow, default)]
    pub last_timestamp: Str<'a>,
    #[serde(borrow, default)]
    pub event_time: Str<'a>,
    #[serde(default)]
    pub count: Option<i64>,
    #[serde(rename = "type", borrow, default)]
    pub event_type: Str<'a>,
    #[serde(borrow, default)]
    pub series: Option<Series<'a>>,
    #[serde(borrow, default)]
    pub action: Str<'a>,
    #[serde(borrow, default)]
    pub reporting_component: Str<'a>,
    #[serde(borrow, default)]
    pub reporting_instance: Str<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "the Event's metadata object")]
pub struct Meta<'a> {
    #[serde(borrow, default)]
    pub name: Str<'a>,
    #[serde(borrow, default)]
    pub namespace: Str<'a>,
    #[serde(borrow, default)]
    pub uid: Str<'a>,
    #[serde(borrow, default)]
    pub resource_version: Str<'a>,
    #[serde(borrow, default)]
    pub creation_timestamp: Str<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "the Event's involvedObject")]
pub struct ObjectRef<'a> {
    #[serde(borrow, default)]
    pub kind: Str<'a>,
    #[serde(borrow, default)]
    pub namespace: Str<'a>,
    #[serde(borrow, default)]
    pub name: Str<'a>,
    #[serde(borrow, default)]
    pub uid: Str<'a>,
    #[serde(borrow, default)]
    pub api_version: Str<'a>,
    #[serde(borrow, default)]
    pub resource_version: Str<'a>,
    #[serde(borrow, default)]
    pub field_path: Str<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "the Event's source")]
pub struct Source<'a> {
    #[serde(borrow, default)]
    pub component: Str<'a>,
    #[serde(borrow, default)]
    pub host: Str<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "the Event's series")]
pub struct Series<'a> {
    #[serde(default)]
    pub count: Option<i64>,
    #[serde(borrow, default)]
    pub last_observed_time: Str<'a>,
}

/// A string of the view as the bytes [`Facts`] hold.
fn bytes<'a>(s: &Option<Cow<'a, str>>) -> Option<Cow<'a, [u8]>> {
    s.as_ref().map(|s| match s {
        Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
        Cow::Owned(s) => Cow::Owned(s.clone().into_bytes()),
    })
}

impl<'a> EventFrame<'a> {
    /// What counting the Event's occurrences needs (as [`Frame::parse_checked`] reads it).
    pub fn facts(&self) -> Facts<'a> {
        let e = &self.object;
        Facts {
            uid: bytes(&e.metadata.uid),
            count: e.count,
            series_count: e.series.as_ref().and_then(|s| s.count),
            reason: bytes(&e.reason),
            event_type: bytes(&e.event_type),
            involved_kind: bytes(&e.involved_object.kind),
        }
    }

    /// ADDED, MODIFIED or DELETED (`None` for any other frame type).
    pub fn kind(&self) -> Option<DataKind> {
        DataKind::of(self.frame_type.as_bytes())
    }

    pub fn parse(line: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(line)
    }

    /// The frame and its Event view from one parse of `line`, for a watch that filters what it
    /// writes; the line is checked whole (valid JSON, UTF-8) as [`Frame::parse_checked`] checks
    /// it. ERROR frames carry a Status, not an Event: they are read again as such (rare, and the
    /// end of that watch).
    pub fn parse_frame(line: &'a [u8]) -> Result<(Frame<'a>, Option<Self>), FrameError> {
        crate::frame::check_utf8(line)?;
        let view = Self::parse(line).map_err(|e| FrameError::Json(e.to_string()))?;
        if view.frame_type == "ERROR" {
            return Ok((Frame::parse(line)?, None));
        }
        let meta = &view.object.metadata;
        let frame = Frame::from_parts(
            view.frame_type.as_bytes(),
            meta.namespace.clone(),
            meta.resource_version.as_deref().map(Cow::Borrowed),
        )?;
        Ok((frame, Some(view)))
    }
}

impl Event<'_> {
    /// The event's time: the best of `series.lastObservedTime`, `lastTimestamp`, `eventTime`,
    /// `metadata.creationTimestamp` (events recorded through events.k8s.io/v1 have no
    /// lastTimestamp).
    pub fn time(&self) -> Option<&str> {
        self.series
            .as_ref()
            .and_then(|s| s.last_observed_time.as_deref())
            .or(self.last_timestamp.as_deref())
            .or(self.event_time.as_deref())
            .or(self.metadata.creation_timestamp.as_deref())
    }

    /// Occurrences: `series.count` when present, else `count`.
    pub fn occurrences(&self) -> Option<i64> {
        self.series.as_ref().and_then(|s| s.count).or(self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_parse_gives_the_same_frame_as_the_head_parse() {
        let error = br#"{"type":"ERROR","object":{"kind":"Status","reason":"Expired","code":410}}"#;
        let bookmark =
            br#"{"type":"BOOKMARK","object":{"kind":"Event","metadata":{"resourceVersion":"9"}}}"#;
        let lines = include_str!("../tests/data/fixtures/frames.jsonl")
            .lines()
            .map(str::as_bytes)
            .chain([&error[..], bookmark]);
        for line in lines {
            let (frame, view) = EventFrame::parse_frame(line).unwrap();
            assert_eq!(frame, Frame::parse(line).unwrap());
            assert_eq!(view.is_some(), !matches!(frame, Frame::Error(_)));
        }
        for bad in [
            &b"{}"[..],
            b"{\"type\":\"ADDED\",\"object\":{}}",
            b"{\"type\":\"NOPE\",\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}}",
        ] {
            assert!(EventFrame::parse_frame(bad).is_err());
            assert!(Frame::parse(bad).is_err());
        }
        // Not UTF-8 inside a field the view skips: refused like parse_checked refuses it.
        let skipped = b"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"1\"},\"x\":\"\xff\"}}";
        assert!(
            EventFrame::parse(skipped).is_ok(),
            "serde skips it unchecked"
        );
        assert!(EventFrame::parse_frame(skipped).is_err());
        assert!(Frame::parse_checked(skipped).is_err());
    }

    #[test]
    fn reads_every_fixture_and_picks_the_best_time() {
        for line in include_str!("../tests/data/fixtures/frames.jsonl").lines() {
            let f = EventFrame::parse(line.as_bytes()).unwrap();
            assert!(f.object.time().is_some(), "{line}");
            assert!(f.object.metadata.namespace.is_some());
        }
        let f = EventFrame::parse(br#"{"type":"ADDED","object":{"metadata":{"creationTimestamp":"2026-01-01T00:00:00Z"},"eventTime":"2026-01-01T00:00:05.123456Z","lastTimestamp":null,"series":{"count":4,"lastObservedTime":"2026-01-01T00:09:00.000001Z"},"count":null}}"#).unwrap();
        assert_eq!(f.object.time(), Some("2026-01-01T00:09:00.000001Z"));
        assert_eq!(f.object.occurrences(), Some(4));
        let f = EventFrame::parse(br#"{"type":"ADDED","object":{"metadata":{"creationTimestamp":"2026-01-01T00:00:00Z"},"eventTime":"2026-01-01T00:00:05.123456Z"}}"#).unwrap();
        assert_eq!(f.object.time(), Some("2026-01-01T00:00:05.123456Z"));
    }

    mod facts {
        use super::super::*;

        const FIXTURES: &str = include_str!("../tests/data/fixtures/frames.jsonl");

        /// The facts as the serde view reads them.
        fn viewed(line: &[u8]) -> Facts<'_> {
            EventFrame::parse(line).unwrap().facts()
        }

        #[test]
        fn the_facts_read_in_the_checking_pass_are_the_views_on_every_fixture_and_damage() {
            let odd = [
                r#"{"object":{"series":{"lastObservedTime":"x","count":48},"count":null,"type":"Warn\u0069ng","reason":"Back\"Off","metadata":{"uid":"u-1","resourceVersion":"9","namespace":"a"},"involvedObject":{"name":"p","kind":"Pod"}},"type":"MODIFIED"}"#,
                r#"{"type":"ADDED","object":{"metadata":{"resourceVersion":"3"},"series":null,"reason":null,"count":null}}"#,
                // Counts at the ends of an i64, and zero.
                r#"{"type":"ADDED","object":{"metadata":{"resourceVersion":"4"},"series":{"count":9223372036854775807},"count":-9223372036854775808}}"#,
                r#"{"type":"ADDED","object":{"metadata":{"resourceVersion":"4"},"series":{"count":0},"count":1}}"#,
                // Keys written with escapes (short and past sixteen bytes), and keys near ours.
                r#"{"t\u0079pe":"ADDED","object":{"metad\u0061ta":{"n\u0061mespace":"a","resourceVersio\u006e":"5","\u0075id":"u"},"re\u0061son":"R","\u0063ount":3,"seriesX":{"count":9},"":1,"counts":2}}"#,
            ];
            let mut checked = 0;
            for line in FIXTURES.lines().chain(odd) {
                let b = line.as_bytes();
                let (frame, facts) = Frame::parse_checked(b).unwrap();
                assert_eq!(frame, Frame::parse(b).unwrap(), "{line}");
                assert_eq!(frame, Frame::parse_head(b).unwrap(), "{line}");
                assert_eq!(facts, viewed(b), "{line}");
                checked += 1;
                // Damage anywhere: refused exactly when the line is no longer a valid frame,
                // and otherwise read as the view reads it.
                for at in (0..b.len()).step_by(7) {
                    for c in [b'"', b'}', b',', b'x', 0xff] {
                        let mut d = b.to_vec();
                        d[at] = c;
                        let valid = std::str::from_utf8(&d).is_ok() && Frame::parse(&d).is_ok();
                        let read = Frame::parse_checked(&d);
                        assert_eq!(read.is_ok(), valid, "{}", String::from_utf8_lossy(&d));
                        if let (Ok((frame, facts)), Ok(view)) = (read, EventFrame::parse(&d)) {
                            assert_eq!(frame, Frame::parse(&d).unwrap());
                            assert_eq!(facts, view.facts(), "{}", String::from_utf8_lossy(&d));
                        }
                    }
                }
            }
            assert!(checked >= 10, "{checked}");
            let (_, f) = Frame::parse_checked(odd[0].as_bytes()).unwrap();
            assert_eq!(f.occurrences(), Some(48), "series.count first");
            assert_eq!(f.reason.as_deref(), Some(&b"Back\"Off"[..]));
            assert_eq!(f.event_type.as_deref(), Some(&b"Warning"[..]));
        }
    }
}
