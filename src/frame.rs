//! The project's vocabulary: a watch frame and what it carries, the resourceVersion that orders
//! frames, and the watch scope. Everything else speaks these types; this module imports nothing
//! of ours.
//!
//! A frame is parsed once, borrowing from its line: the watch type, the object's namespace and
//! resourceVersion, and for ERROR frames the Status. The object's bytes are never re-serialised:
//! what is written is what the server sent.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde::Deserialize;
use serde_json::value::RawValue;

/// An object's `metadata.resourceVersion`. Officially opaque; in practice an etcd revision.
/// The one place where resourceVersions are compared.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceVersion(String);

impl ResourceVersion {
    pub fn new(rv: String) -> Self {
        Self(rv)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Orders two resourceVersions when both are numbers (etcd revisions); `None` when either
    /// is not, since the API only promises equality for opaque values.
    pub fn compare(&self, other: &Self) -> Option<Ordering> {
        if self.0 == other.0 {
            return Some(Ordering::Equal);
        }
        let a: u64 = self.0.parse().ok()?;
        let b: u64 = other.0.parse().ok()?;
        Some(a.cmp(&b))
    }

    /// Whether an object version must still be written, given the newest version already written
    /// for its scope. Unknown order (non-numeric versions) writes it: a duplicate is better than
    /// a loss, and the Elastic pipeline's document id makes it harmless.
    pub fn is_unwritten(&self, written: Option<&ResourceVersion>) -> bool {
        match written {
            None => true,
            Some(mark) => !matches!(self.compare(mark), Some(Ordering::Less | Ordering::Equal)),
        }
    }

    /// The newer of two versions (the second when they cannot be ordered: it came later).
    pub fn newest(self, other: Self) -> Self {
        match self.compare(&other) {
            Some(Ordering::Greater) => self,
            _ => other,
        }
    }

    /// A sort key: numeric versions in numeric order, others after them.
    pub fn sort_key(&self) -> u64 {
        self.0.parse().unwrap_or(u64::MAX)
    }
}

impl std::fmt::Display for ResourceVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What one watch covers: every namespace, or one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    All,
    Namespace(String),
}

impl Scope {
    pub fn contains(&self, namespace: Option<&str>) -> bool {
        match self {
            Scope::All => true,
            Scope::Namespace(ns) => namespace == Some(ns.as_str()),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::All => f.write_str("all namespaces"),
            Scope::Namespace(ns) => write!(f, "namespace {ns}"),
        }
    }
}

/// One or more complete frame lines, each ending in `\n`: what the watch hands the writer.
pub type Batch = Vec<u8>;

/// The write position per scope (what the output holds, what a Lease hands over).
pub type Positions = std::collections::BTreeMap<Scope, ResourceVersion>;

/// What a watch sends the writer, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Write {
    Lines(Batch),
    /// Every frame of this scope up to here has been sent: once written and synced, the output
    /// covers the scope (see `position::covered`).
    Covered(Scope),
    /// The last frame sent for this scope so far has this resourceVersion: once the lines before
    /// are written, it is the scope's write position (handed over to the next leader).
    Position(Scope, ResourceVersion),
}

impl From<Batch> for Write {
    fn from(batch: Batch) -> Self {
        Write::Lines(batch)
    }
}

/// The watch type of a data frame: the frames that carry an Event and belong in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataKind {
    Added,
    Modified,
    Deleted,
}

impl DataKind {
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
fn version(rv: Option<Cow<'_, str>>) -> Option<ResourceVersion> {
    rv.filter(|rv| !rv.is_empty())
        .map(|rv| ResourceVersion::new(rv.into_owned()))
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
        Frame::from_parts(&wire.kind, meta.namespace, meta.resource_version)
    }

    /// A data or BOOKMARK frame from its type, namespace and resourceVersion, however they were
    /// read (see `event::EventFrame::frame`).
    pub fn from_parts(
        kind: &str,
        namespace: Option<Cow<'a, str>>,
        resource_version: Option<Cow<'_, str>>,
    ) -> Result<Self, FrameError> {
        let kind = match kind {
            "ADDED" => Some(DataKind::Added),
            "MODIFIED" => Some(DataKind::Modified),
            "DELETED" => Some(DataKind::Deleted),
            "BOOKMARK" => None,
            other => return Err(FrameError::UnknownType(other.into())),
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

/// What [`Frame::parse_head`] has read so far.
#[derive(Default)]
struct Head<'a> {
    kind: Option<Cow<'a, str>>,
    namespace: Option<Cow<'a, str>>,
    resource_version: Option<Cow<'a, str>>,
    /// The object's metadata has been read to its end.
    metadata_read: bool,
    /// The object has a `kind` (among the fields read).
    object_kind: bool,
    /// Reading stopped on purpose: enough was read.
    stopped: bool,
}

impl Head<'_> {
    /// Enough to place a data or BOOKMARK frame. An ERROR frame is never enough: it is read
    /// whole for its Status.
    fn enough(&self) -> bool {
        self.kind.as_deref().is_some_and(|k| k != "ERROR")
            && (self.metadata_read || (self.resource_version.is_some() && self.namespace.is_some()))
    }

    /// Ends the read early (as an error serde passes up) once enough is known.
    fn check<E: serde::de::Error>(&mut self) -> Result<(), E> {
        if self.enough() {
            self.stopped = true;
            return Err(E::custom("enough"));
        }
        Ok(())
    }
}

/// A string, borrowed from the line when it has no escapes.
#[derive(Deserialize)]
struct Str<'a>(#[serde(borrow)] Cow<'a, str>);

/// Reads `{"type":…,"object":{…}}` into a [`Head`].
struct FrameSeed<'h, 'a>(&'h mut Head<'a>);
/// Reads the object, for its metadata.
struct ObjectSeed<'h, 'a>(&'h mut Head<'a>);
/// Reads the metadata's namespace and resourceVersion.
struct MetaSeed<'h, 'a>(&'h mut Head<'a>);

macro_rules! map_seed {
    ($seed:ident, $what:literal, |$head:ident, $key:ident, $map:ident| $body:block) => {
        impl<'de> serde::de::DeserializeSeed<'de> for $seed<'_, 'de> {
            type Value = ();
            fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
                d.deserialize_map(self)
            }
        }

        impl<'de> serde::de::Visitor<'de> for $seed<'_, 'de> {
            type Value = ();
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($what)
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut $map: M) -> Result<(), M::Error> {
                let $head = self.0;
                while let Some(Str($key)) = $map.next_key::<Str<'de>>()? {
                    $body
                    $head.check()?;
                }
                Ok(())
            }
        }
    };
}

map_seed!(FrameSeed, "a watch frame object", |head, key, map| {
    match key.as_ref() {
        "type" => head.kind = Some(map.next_value::<Str<'de>>()?.0),
        "object" => map.next_value_seed(ObjectSeed(&mut *head))?,
        _ => {
            map.next_value::<serde::de::IgnoredAny>()?;
        }
    }
});

map_seed!(ObjectSeed, "an object", |head, key, map| {
    if key == "metadata" {
        map.next_value_seed(MetaSeed(&mut *head))?;
        head.metadata_read = true;
    } else {
        head.object_kind |= key == "kind";
        map.next_value::<serde::de::IgnoredAny>()?;
    }
});

map_seed!(MetaSeed, "object metadata", |head, key, map| {
    match key.as_ref() {
        "namespace" => head.namespace = Some(map.next_value::<Str<'de>>()?.0),
        "resourceVersion" => head.resource_version = Some(map.next_value::<Str<'de>>()?.0),
        _ => {
            map.next_value::<serde::de::IgnoredAny>()?;
        }
    }
});

impl<'a> Frame<'a> {
    /// Reads only what places a frame — its type, the object's namespace and resourceVersion —
    /// and stops there: the watch's hot path, where the line is written as received. With the
    /// API server's field order (`metadata` early, `namespace` before `resourceVersion`, the
    /// bulk after) that is the first few hundred bytes; any other order is read further, as far
    /// as it takes. ERROR frames are read whole. The line must end as an object does.
    pub fn parse_head(line: &'a [u8]) -> Result<Self, FrameError> {
        if line.trim_ascii_end().last() != Some(&b'}') {
            return Err(FrameError::Json(
                "the line does not end with '}': not a whole frame".into(),
            ));
        }
        let mut head = Head::default();
        let mut de = serde_json::Deserializer::from_slice(line);
        let read = serde::de::DeserializeSeed::deserialize(FrameSeed(&mut head), &mut de)
            .and_then(|()| de.end());
        match read {
            Err(_) if head.stopped => {}
            Err(e) => return Err(FrameError::Json(e.to_string())),
            Ok(()) if head.kind.as_deref() == Some("ERROR") => return Frame::parse(line),
            Ok(()) => {}
        }
        let Some(kind) = head.kind else {
            return Err(FrameError::Json("missing field `type`".into()));
        };
        Frame::from_parts(&kind, head.namespace, head.resource_version)
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
    pub namespace: Option<String>,
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
    ///
    /// The page's parse has checked the item is JSON, so the item is read only as far as its
    /// metadata's resourceVersion (a `kind` is looked for among the fields before it, where the
    /// API server puts it).
    pub fn from_item(item: &RawValue) -> Result<Self, FrameError> {
        let raw = item.get().trim().as_bytes();
        let mut head = Head {
            kind: Some(Cow::Borrowed("ADDED")),
            ..Head::default()
        };
        let mut de = serde_json::Deserializer::from_slice(raw);
        match serde::de::DeserializeSeed::deserialize(ObjectSeed(&mut head), &mut de) {
            Err(_) if head.stopped => {}
            Err(e) => return Err(FrameError::Json(e.to_string())),
            Ok(()) => {}
        }
        let resource_version = version(head.resource_version)
            .ok_or(FrameError::MissingResourceVersion("list item"))?;
        let body = raw
            .strip_prefix(b"{")
            .ok_or_else(|| FrameError::Json("list item is not an object".into()))?;
        let mut line =
            Vec::with_capacity(ADDED_PREFIX.len() + KIND_API_VERSION.len() + raw.len() + 2);
        line.extend_from_slice(ADDED_PREFIX);
        line.push(b'{');
        if !head.object_kind {
            line.extend_from_slice(KIND_API_VERSION);
            if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'}') {
                line.push(b',');
            }
        }
        line.extend_from_slice(body);
        line.push(b'}');
        Ok(ListedObject {
            resource_version,
            namespace: head.namespace.map(Cow::into_owned),
            line,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rv(s: &str) -> ResourceVersion {
        ResourceVersion::new(s.into())
    }

    #[test]
    fn compares_numeric_versions_numerically() {
        assert_eq!(rv("9").compare(&rv("10")), Some(Ordering::Less));
        assert_eq!(rv("10").compare(&rv("10")), Some(Ordering::Equal));
        assert_eq!(rv("abc").compare(&rv("10")), None);
        assert_eq!(rv("abc").compare(&rv("abc")), Some(Ordering::Equal));
        assert_eq!(rv("18446744073709551616").compare(&rv("1")), None);
    }

    #[test]
    fn unwritten_means_newer_than_the_mark_or_unknown() {
        assert!(rv("5").is_unwritten(None));
        assert!(rv("11").is_unwritten(Some(&rv("10"))));
        assert!(!rv("10").is_unwritten(Some(&rv("10"))));
        assert!(!rv("9").is_unwritten(Some(&rv("10"))));
        assert!(rv("x").is_unwritten(Some(&rv("10"))));
        assert_eq!(rv("3").newest(rv("7")), rv("7"));
        assert_eq!(rv("7").newest(rv("3")), rv("7"));
    }

    const FIXTURES: &str = include_str!("../tests/fixtures/frames.jsonl");

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
                resource_version: ResourceVersion::new("42".into()),
            }
        );
    }

    #[test]
    fn bookmark_is_not_data() {
        let line = br#"{"type":"BOOKMARK","object":{"kind":"Event","apiVersion":"v1","metadata":{"resourceVersion":"77","annotations":{"k8s.io/initial-events-end":"true"}},"involvedObject":{},"source":{},"firstTimestamp":null,"lastTimestamp":null,"eventTime":null,"reportingComponent":"","reportingInstance":""}}"#;
        assert_eq!(
            Frame::parse(line).unwrap(),
            Frame::Bookmark(ResourceVersion::new("77".into()))
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
