//! A LIST page and its items: each item becomes, byte for byte, the ADDED frame a watch would
//! send for it.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::ResourceVersion;
use super::head::Fields;
use super::parse::{FrameError, version};

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
    /// The Event's uid and count (`series.count`, else `count`): the baseline its later frames
    /// count occurrences from.
    pub uid: Option<String>,
    pub count: Option<i64>,
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
    /// The page's parse has checked the item is JSON; the item is read once, member by member,
    /// for its place and what counting its occurrences needs (`kind` is looked for among the
    /// fields before `metadata`, where the API server puts it).
    pub fn from_item(item: &RawValue) -> Result<Self, FrameError> {
        let raw = item.get().trim().as_bytes();
        let fields = Fields::of_item(raw)?;
        let resource_version = version(fields.resource_version)
            .ok_or(FrameError::MissingResourceVersion("list item"))?;
        let body = raw
            .strip_prefix(b"{")
            .ok_or_else(|| FrameError::Json("list item is not an object".into()))?;
        let mut line =
            Vec::with_capacity(ADDED_PREFIX.len() + KIND_API_VERSION.len() + raw.len() + 2);
        line.extend_from_slice(ADDED_PREFIX);
        line.push(b'{');
        if !fields.object_kind {
            line.extend_from_slice(KIND_API_VERSION);
            if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'}') {
                line.push(b',');
            }
        }
        line.extend_from_slice(body);
        line.push(b'}');
        let facts = fields.facts;
        Ok(ListedObject {
            resource_version,
            namespace: fields.namespace.map(Cow::into_owned),
            uid: facts
                .uid
                .as_deref()
                .map(|u| String::from_utf8_lossy(u).into_owned()),
            count: facts.occurrences(),
            line,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = include_str!("../../tests/data/fixtures/frames.jsonl");

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
            // Read in the same walk: what counting the Event's occurrences starts from.
            let (_, facts) = super::super::Frame::parse_checked(line.as_bytes()).unwrap();
            assert_eq!(
                listed.uid.as_deref().map(str::as_bytes),
                facts.uid.as_deref()
            );
            assert_eq!(listed.count, facts.occurrences());
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
