//! Watch frames: one line of the API server's watch stream, and the same shape synthesised from a
//! LIST item.
//!
//! A frame is parsed once, borrowing from the line: the watch type, the object's namespace
//! and resourceVersion, and for ERROR frames the Status code. The object's bytes are never
//! re-serialised: what is written is what the server sent.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::position::ResourceVersion;

/// The watch event type of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameType {
    Added,
    Modified,
    Deleted,
    Bookmark,
    Error,
}

impl FrameType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ADDED" => Self::Added,
            "MODIFIED" => Self::Modified,
            "DELETED" => Self::Deleted,
            "BOOKMARK" => Self::Bookmark,
            "ERROR" => Self::Error,
            _ => return None,
        })
    }

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
            Self::Bookmark => "BOOKMARK",
            Self::Error => "ERROR",
        }
    }

    /// ADDED, MODIFIED and DELETED frames carry an Event and belong in the output.
    pub fn is_data(self) -> bool {
        matches!(self, Self::Added | Self::Modified | Self::Deleted)
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

/// One parsed watch frame, borrowing from its line.
#[derive(Debug)]
pub struct Frame<'a> {
    pub kind: FrameType,
    pub namespace: Option<Cow<'a, str>>,
    /// The object's resourceVersion; always present on data and BOOKMARK frames.
    pub resource_version: Option<ResourceVersion>,
    /// For ERROR frames: the Status `code` and `reason`.
    pub status: Option<Status>,
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
    kind: Option<Cow<'a, str>>,
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

impl<'a> Frame<'a> {
    /// Parses one line (without its `\n`).
    pub fn parse(line: &'a [u8]) -> Result<Self, FrameError> {
        let wire: WireFrame<'a> =
            serde_json::from_slice(line).map_err(|e| FrameError::Json(e.to_string()))?;
        let kind = FrameType::parse(&wire.kind)
            .ok_or_else(|| FrameError::UnknownType(wire.kind.into()))?;
        let object = wire.object;
        let meta = object.metadata.unwrap_or_default();
        let resource_version = meta
            .resource_version
            .filter(|rv| !rv.is_empty())
            .map(|rv| ResourceVersion::new(rv.into_owned()));
        if resource_version.is_none() && kind != FrameType::Error {
            return Err(FrameError::MissingResourceVersion(kind.as_str()));
        }
        let status = (kind == FrameType::Error).then(|| Status {
            code: object.code.unwrap_or_default(),
            reason: object.reason.map(Cow::into_owned).unwrap_or_default(),
            message: object.message.map(Cow::into_owned).unwrap_or_default(),
        });
        Ok(Frame {
            kind,
            namespace: meta.namespace,
            resource_version,
            status,
        })
    }
}

/// The head of an Event LIST response: its resourceVersion, continue token and raw items.
#[derive(Deserialize)]
pub struct ListPage<'a> {
    #[serde(borrow)]
    pub metadata: ListMeta<'a>,
    #[serde(borrow, default)]
    pub items: Vec<&'a RawValue>,
}

#[derive(Deserialize, Default)]
pub struct ListMeta<'a> {
    #[serde(rename = "resourceVersion", borrow, default)]
    pub resource_version: Option<Cow<'a, str>>,
    #[serde(rename = "continue", borrow, default)]
    pub continue_token: Option<Cow<'a, str>>,
}

impl<'a> ListPage<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Self, FrameError> {
        serde_json::from_slice(body).map_err(|e| FrameError::Json(e.to_string()))
    }
}

/// One object taken from a LIST, ready to be written as an ADDED frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub resource_version: ResourceVersion,
    /// The complete frame line, without `\n`.
    pub line: Vec<u8>,
}

/// Prefix that makes a list item look exactly as a watch frame would carry it.
const ADDED_PREFIX: &[u8] = br#"{"type":"ADDED","object":"#;
const KIND_API_VERSION: &[u8] = br#""kind":"Event","apiVersion":"v1""#;

impl ListedObject {
    /// Builds the ADDED frame for one LIST item. List items carry no `kind`/`apiVersion`; they are
    /// inserted first, as the watch stream would send them. The rest of the item is kept byte
    /// for byte.
    pub fn from_item(item: &RawValue) -> Result<Self, FrameError> {
        let raw = item.get().trim().as_bytes();
        let head: ObjectHead<'_> =
            serde_json::from_slice(raw).map_err(|e| FrameError::Json(e.to_string()))?;
        let meta = head.metadata.unwrap_or_default();
        let resource_version = meta
            .resource_version
            .filter(|rv| !rv.is_empty())
            .map(|rv| ResourceVersion::new(rv.into_owned()))
            .ok_or(FrameError::MissingResourceVersion("list item"))?;
        let body = raw
            .strip_prefix(b"{")
            .ok_or_else(|| FrameError::Json("list item is not an object".into()))?;
        let mut line =
            Vec::with_capacity(ADDED_PREFIX.len() + KIND_API_VERSION.len() + raw.len() + 2);
        line.extend_from_slice(ADDED_PREFIX);
        line.push(b'{');
        if head.kind.is_none() {
            line.extend_from_slice(KIND_API_VERSION);
            if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'}') {
                line.push(b',');
            }
        }
        line.extend_from_slice(body);
        line.push(b'}');
        Ok(ListedObject {
            resource_version,
            line,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = include_str!("../tests/fixtures/frames.jsonl");

    #[test]
    fn parses_every_fixture_frame() {
        for (i, line) in FIXTURES.lines().enumerate() {
            let f = Frame::parse(line.as_bytes()).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
            assert!(f.kind.is_data(), "line {}", i + 1);
            assert!(f.resource_version.is_some());
        }
    }

    #[test]
    fn reads_type_namespace_and_resource_version() {
        let line = br#"{"type":"MODIFIED","object":{"kind":"Event","apiVersion":"v1","metadata":{"name":"a","namespace":"ns1","uid":"u-1","resourceVersion":"42"},"message":"x \u003c y"}}"#;
        let f = Frame::parse(line).unwrap();
        assert_eq!(f.kind, FrameType::Modified);
        assert_eq!(f.namespace.as_deref(), Some("ns1"));
        assert_eq!(f.resource_version, Some(ResourceVersion::new("42".into())));
        assert!(f.status.is_none());
    }

    #[test]
    fn bookmark_is_not_data() {
        let line = br#"{"type":"BOOKMARK","object":{"kind":"Event","apiVersion":"v1","metadata":{"resourceVersion":"77","annotations":{"k8s.io/initial-events-end":"true"}},"involvedObject":{},"source":{},"firstTimestamp":null,"lastTimestamp":null,"eventTime":null,"reportingComponent":"","reportingInstance":""}}"#;
        let f = Frame::parse(line).unwrap();
        assert_eq!(f.kind, FrameType::Bookmark);
        assert!(!f.kind.is_data());
        assert_eq!(f.resource_version.unwrap().as_str(), "77");
    }

    #[test]
    fn error_frame_carries_status() {
        let line = br#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"The resourceVersion for the provided watch is too old.","reason":"Expired","code":410}}"#;
        let f = Frame::parse(line).unwrap();
        assert_eq!(f.kind, FrameType::Error);
        let status = f.status.unwrap();
        assert!(status.is_expired());
        assert_eq!(status.code, 410);
        let gone = br#"{"type":"ERROR","object":{"kind":"Status","reason":"Gone","code":410}}"#;
        assert!(Frame::parse(gone).unwrap().status.unwrap().is_expired());
        let other =
            br#"{"type":"ERROR","object":{"kind":"Status","reason":"InternalError","code":500}}"#;
        assert!(!Frame::parse(other).unwrap().status.unwrap().is_expired());
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

    #[test]
    fn list_item_becomes_the_watch_frame_byte_for_byte() {
        // The fixture frames carry kind/apiVersion first; a LIST item is the same object without them.
        for line in FIXTURES.lines() {
            let prefix = r#"{"type":"ADDED","object":{"kind":"Event","apiVersion":"v1","#;
            let Some(rest) = line.strip_prefix(prefix) else {
                continue;
            };
            let item = format!("{{{}", &rest[..rest.len() - 1]);
            let raw: Box<RawValue> = serde_json::from_str(&item).unwrap();
            let listed = ListedObject::from_item(&raw).unwrap();
            assert_eq!(String::from_utf8(listed.line).unwrap(), line);
        }
    }

    #[test]
    fn list_item_with_kind_is_not_given_a_second_one() {
        let raw: Box<RawValue> =
            serde_json::from_str(r#"{"kind":"Event","apiVersion":"v1","metadata":{"resourceVersion":"5","namespace":"n"}}"#)
                .unwrap();
        let listed = ListedObject::from_item(&raw).unwrap();
        assert_eq!(
            listed.line,
            br#"{"type":"ADDED","object":{"kind":"Event","apiVersion":"v1","metadata":{"resourceVersion":"5","namespace":"n"}}}"#
        );
        let raw: Box<RawValue> = serde_json::from_str(r#"{"metadata":{}}"#).unwrap();
        assert!(ListedObject::from_item(&raw).is_err());
    }

    #[test]
    fn list_page_reads_continue_and_items() {
        let body = br#"{"kind":"EventList","apiVersion":"v1","metadata":{"resourceVersion":"900","continue":"abc"},"items":[{"metadata":{"resourceVersion":"3"}},{"metadata":{"resourceVersion":"4"}}]}"#;
        let page = ListPage::parse(body).unwrap();
        assert_eq!(page.metadata.resource_version.as_deref(), Some("900"));
        assert_eq!(page.metadata.continue_token.as_deref(), Some("abc"));
        assert_eq!(page.items.len(), 2);
    }
}
