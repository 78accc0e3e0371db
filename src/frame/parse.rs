//! One line of the watch stream → a [`Frame`], parsed once and borrowing from the line.

use std::borrow::Cow;

use serde::Deserialize;

use super::ResourceVersion;

/// The watch type of a data frame: the frames that carry an Event and belong in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataKind {
    Added,
    Modified,
    Deleted,
}

impl DataKind {
    /// Every data kind, in the order of [`DataKind::index`].
    pub const ALL: [DataKind; 3] = [DataKind::Added, DataKind::Modified, DataKind::Deleted];

    /// Its place in [`DataKind::ALL`]: for anything kept per kind in an array.
    pub fn index(self) -> usize {
        match self {
            DataKind::Added => 0,
            DataKind::Modified => 1,
            DataKind::Deleted => 2,
        }
    }

    /// The data kind a frame type names (`None`: BOOKMARK, ERROR or anything else).
    pub fn of(frame_type: &[u8]) -> Option<Self> {
        match frame_type {
            b"ADDED" => Some(DataKind::Added),
            b"MODIFIED" => Some(DataKind::Modified),
            b"DELETED" => Some(DataKind::Deleted),
            _ => None,
        }
    }

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// Why a line is not a watch frame.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("not valid JSON of the form {{\"type\":…,\"object\":{{…}}}}: {0}")]
    Json(String),
    #[error("unknown watch type {0:?}")]
    UnknownType(String),
    #[error("{0} frame without metadata.resourceVersion")]
    MissingResourceVersion(&'static str),
}

/// What one line of a watch stream can be.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// ADDED, MODIFIED or DELETED: an Event to write.
    Data {
        kind: DataKind,
        namespace: Option<Cow<'a, str>>,
        resource_version: ResourceVersion,
    },
    /// A position the server vouches for; never data.
    Bookmark(ResourceVersion),
    /// The server reports a problem (410 Expired: the position is gone).
    Error(Status),
}

/// The parts of a `metav1.Status` we act on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct Status {
    #[serde(default)]
    pub code: u16,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
}

impl Status {
    /// The position is too old for the server: relist (`Expired`, or `Gone` on very old servers).
    pub fn is_expired(&self) -> bool {
        self.code == 410 || self.reason == "Expired" || self.reason == "Gone"
    }
}

#[derive(Deserialize)]
struct WireFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    object: ObjectHead<'a>,
}

/// What we read of an object: enough to place it, nothing more. Unknown fields are skipped
/// (but still checked to be valid JSON).
#[derive(Deserialize, Default)]
struct ObjectHead<'a> {
    #[serde(borrow, default)]
    metadata: Option<MetaHead<'a>>,
    #[serde(default)]
    code: Option<u16>,
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
struct MetaHead<'a> {
    #[serde(borrow, default)]
    namespace: Option<Cow<'a, str>>,
    #[serde(rename = "resourceVersion", borrow, default)]
    resource_version: Option<Cow<'a, str>>,
}

/// A non-empty resourceVersion.
pub(super) fn version(rv: Option<Cow<'_, str>>) -> Option<ResourceVersion> {
    rv.filter(|rv| !rv.is_empty())
        .map(|rv| ResourceVersion::new(&rv))
}

/// The whole line is UTF-8: serde_json skips a string it does not keep without looking at its
/// UTF-8, so a serde parse that skips (`event::EventFrame::parse_frame`) needs this first;
/// [`Frame::parse_checked`] checks inside strings itself.
pub fn check_utf8(line: &[u8]) -> Result<(), FrameError> {
    simdutf8::basic::from_utf8(line)
        .map(|_| ())
        .map_err(|_| FrameError::Json("the line is not UTF-8".into()))
}

impl<'a> Frame<'a> {
    /// Parses one line (without its `\n`).
    pub fn parse(line: &'a [u8]) -> Result<Self, FrameError> {
        let wire: WireFrame<'a> =
            serde_json::from_slice(line).map_err(|e| FrameError::Json(e.to_string()))?;
        let object = wire.object;
        if wire.kind == "ERROR" {
            return Ok(Frame::Error(Status {
                code: object.code.unwrap_or_default(),
                reason: object.reason.map(Cow::into_owned).unwrap_or_default(),
                message: object.message.map(Cow::into_owned).unwrap_or_default(),
            }));
        }
        let meta = object.metadata.unwrap_or_default();
        Frame::from_parts(wire.kind.as_bytes(), meta.namespace, meta.resource_version)
    }

    /// A data or BOOKMARK frame from its type, namespace and resourceVersion, however they were
    /// read (see `event::EventFrame::frame`).
    pub fn from_parts(
        kind: &[u8],
        namespace: Option<Cow<'a, str>>,
        resource_version: Option<Cow<'_, str>>,
    ) -> Result<Self, FrameError> {
        let kind = match (DataKind::of(kind), kind) {
            (Some(data), _) => Some(data),
            (None, b"BOOKMARK") => None,
            (None, other) => {
                return Err(FrameError::UnknownType(
                    String::from_utf8_lossy(other).into_owned(),
                ));
            }
        };
        let missing = kind.map_or("BOOKMARK", DataKind::as_str);
        let resource_version =
            version(resource_version).ok_or(FrameError::MissingResourceVersion(missing))?;
        Ok(match kind {
            Some(kind) => Frame::Data {
                kind,
                namespace,
                resource_version,
            },
            None => Frame::Bookmark(resource_version),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rv(s: &str) -> ResourceVersion {
        ResourceVersion::new(s)
    }

    const FIXTURES: &str = include_str!("../../tests/data/fixtures/frames.jsonl");

    #[test]
    fn parses_every_fixture_frame() {
        for (i, line) in FIXTURES.lines().enumerate() {
            let f = Frame::parse(line.as_bytes()).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
            assert!(matches!(f, Frame::Data { .. }), "line {}", i + 1);
        }
    }

    #[test]
    fn the_head_agrees_with_the_whole_parse_on_every_fixture_and_odd_frame() {
        let odd = [
            // object before type; namespace after resourceVersion; escapes; no namespace
            r#"{"object":{"metadata":{"resourceVersion":"7","namespace":"n\u0031"},"x":1},"type":"DELETED"}"#,
            r#"{"type":"ADDED","object":{"kind":"Event","metadata":{"name":"a","resourceVersion":"8"},"count":2}}"#,
            r#"{"type":"BOOKMARK","object":{"kind":"Event","metadata":{"resourceVersion":"9"}}}"#,
            r#"{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old"}}"#,
            r#"{"type":"ERROR","object":{"kind":"Status","code":500,"message":"x"}}"#,
            "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"namespace\":\"a\",\"resourceVersion\":\"10\"}}}  ",
        ];
        for line in FIXTURES.lines().chain(odd) {
            let whole = Frame::parse(line.as_bytes()).unwrap();
            assert_eq!(Frame::parse_head(line.as_bytes()).unwrap(), whole, "{line}");
        }
    }

    #[test]
    fn the_head_rejects_what_is_not_a_frame() {
        let bad: [&[u8]; 7] = [
            b"",
            b"not json",
            br#"{"type":"ADDED","object":{"metadata":{"namespace":"a","resourceVersion":"5"},"#,
            br#"{"type":"ADDED","object":{"metadata":{"namespace":"a"}}}"#,
            br#"{"type":"WHAT","object":{"metadata":{"namespace":"a","resourceVersion":"5"}}}"#,
            br#"{"object":{"metadata":{"namespace":"a","resourceVersion":"5"}}}"#,
            br#"["type","ADDED"]"#,
        ];
        for line in bad {
            assert!(
                Frame::parse_head(line).is_err(),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn the_head_stops_reading_once_the_frame_is_placed() {
        // What follows the resourceVersion is not read: the server's line is written as sent.
        let line = br#"{"type":"ADDED","object":{"metadata":{"namespace":"a","resourceVersion":"5","managedFields":[{"bulk":[1,2}]}}"#;
        assert!(Frame::parse(line).is_err());
        assert_eq!(
            Frame::parse_head(line).unwrap(),
            Frame::Data {
                kind: DataKind::Added,
                namespace: Some("a".into()),
                resource_version: rv("5"),
            }
        );
    }

    #[test]
    fn reads_type_namespace_and_resource_version() {
        let line = br#"{"type":"MODIFIED","object":{"kind":"Event","apiVersion":"v1","metadata":{"name":"a","namespace":"ns1","uid":"u-1","resourceVersion":"42"},"message":"x \u003c y"}}"#;
        assert_eq!(
            Frame::parse(line).unwrap(),
            Frame::Data {
                kind: DataKind::Modified,
                namespace: Some("ns1".into()),
                resource_version: ResourceVersion::new("42"),
            }
        );
    }

    #[test]
    fn bookmark_is_not_data() {
        let line = br#"{"type":"BOOKMARK","object":{"kind":"Event","apiVersion":"v1","metadata":{"resourceVersion":"77","annotations":{"k8s.io/initial-events-end":"true"}},"involvedObject":{},"source":{},"firstTimestamp":null,"lastTimestamp":null,"eventTime":null,"reportingComponent":"","reportingInstance":""}}"#;
        assert_eq!(
            Frame::parse(line).unwrap(),
            Frame::Bookmark(ResourceVersion::new("77"))
        );
    }

    #[test]
    fn error_frame_carries_status() {
        let line = br#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"The resourceVersion for the provided watch is too old.","reason":"Expired","code":410}}"#;
        let status = |line| match Frame::parse(line).unwrap() {
            Frame::Error(status) => status,
            other => panic!("{other:?}"),
        };
        let expired = status(line);
        assert!(expired.is_expired());
        assert_eq!(expired.code, 410);
        let gone = br#"{"type":"ERROR","object":{"kind":"Status","reason":"Gone","code":410}}"#;
        assert!(status(gone).is_expired());
        let other =
            br#"{"type":"ERROR","object":{"kind":"Status","reason":"InternalError","code":500}}"#;
        assert!(!status(other).is_expired());
    }

    #[test]
    fn rejects_what_is_not_a_frame() {
        for bad in [
            &b""[..],
            b"garbage",
            b"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}",
            b"{\"type\":\"ADDED\"}",
            b"[1,2]",
            b"{\"type\":\"WHATEVER\",\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}}",
            b"{\"type\":\"ADDED\",\"object\":{\"metadata\":{}}}",
            b"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"\"}}}",
            b"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":7}}}",
            b"\xff\xfe",
        ] {
            assert!(
                Frame::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// The reference for a whole, valid line: UTF-8, and serde_json's full parse.
    fn valid(b: &[u8]) -> bool {
        std::str::from_utf8(b).is_ok() && serde_json::from_slice::<serde::de::IgnoredAny>(b).is_ok()
    }

    #[test]
    fn the_checked_parse_places_the_frame_and_refuses_any_line_that_is_not_valid_json() {
        for line in FIXTURES.lines() {
            assert_eq!(
                Frame::parse_checked(line.as_bytes()).unwrap().0,
                Frame::parse_head(line.as_bytes()).unwrap()
            );
        }
        let good = FIXTURES.lines().next().unwrap();
        // A head that reads well and a tail that is not JSON.
        let with_control = good.replacen("\"message\":\"", "\"message\":\"\u{1}", 1);
        let trailing_comma = format!("{},}}", &good[..good.len() - 1]);
        let not_utf8 = [&good.as_bytes()[..good.len() - 3], b"\xff\"}}"].concat();
        for bad in [
            with_control.as_bytes(),
            trailing_comma.as_bytes(),
            &not_utf8,
        ] {
            assert!(Frame::parse_head(bad).is_ok(), "the head alone reads well");
            assert!(
                Frame::parse_checked(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        // Cut anywhere or one byte changed: checked exactly when the line is valid JSON.
        let mut checked = 0;
        for line in FIXTURES.lines() {
            let b = line.as_bytes();
            for at in (0..b.len()).step_by(5) {
                for c in [b'"', b'\\', b'\n', 0x01, b'}', b',', b'x', 0xc3] {
                    let mut d = b.to_vec();
                    d[at] = c;
                    if valid(&d) {
                        continue; // still a frame, perhaps another one
                    }
                    assert!(
                        Frame::parse_checked(&d).is_err(),
                        "{}",
                        String::from_utf8_lossy(&d)
                    );
                    checked += 1;
                }
                assert_eq!(
                    Frame::parse_checked(&b[..at]).is_ok(),
                    valid(&b[..at]) && at > 0 && Frame::parse(&b[..at]).is_ok()
                );
            }
        }
        assert!(checked > 3000, "{checked}");
    }
}
