//! The reader behind [`Frame::parse_head`] and [`Frame::parse_checked`]: it walks a frame's
//! members for its type and its object's namespace and resourceVersion, skipping every other
//! value with the validator's skip. Read as a head it stops once the frame is placed; read whole
//! it goes on to the end, so the line is validated in the same pass.

use std::borrow::Cow;

use super::parse::{Frame, FrameError};
use super::validate::{Invalid, end, invalid, member_key, rest_of_objects, skip_ws, string, value};

/// What the reader has found so far.
#[derive(Default)]
pub(super) struct Head<'a> {
    pub(super) kind: Option<Cow<'a, str>>,
    pub(super) namespace: Option<Cow<'a, str>>,
    pub(super) resource_version: Option<Cow<'a, str>>,
    /// The object's metadata has been read to its end.
    pub(super) metadata_read: bool,
    /// The object has a `kind` (among the members read).
    pub(super) object_kind: bool,
    /// Also read the Event's [`Facts`] (every member of the object is then walked).
    pub(super) facts: Option<Facts<'a>>,
}

/// What counting an Event's occurrences needs of a data frame, read in the pass that places
/// and validates it: its uid, its counts, and what it is labelled by.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Facts<'a> {
    pub uid: Option<Cow<'a, str>>,
    pub count: Option<i64>,
    pub series_count: Option<i64>,
    pub reason: Option<Cow<'a, str>>,
    /// The Event's `type` (Normal, Warning).
    pub event_type: Option<Cow<'a, str>>,
    /// `involvedObject.kind`.
    pub involved_kind: Option<Cow<'a, str>>,
}

impl Facts<'_> {
    /// The Event's count: `series.count`, else `count`.
    pub fn occurrences(&self) -> Option<i64> {
        self.series_count.or(self.count)
    }
}

impl Head<'_> {
    /// Enough to place a data or BOOKMARK frame. An ERROR frame is never enough: it is read
    /// whole for its Status; nor is a frame whose facts are wanted.
    fn enough(&self) -> bool {
        self.facts.is_none()
            && self.kind.as_deref().is_some_and(|k| k != "ERROR")
            && (self.metadata_read || (self.resource_version.is_some() && self.namespace.is_some()))
    }
}

/// Where a member's read ended: after its value, or (enough being known) just after the value
/// of a member `depth` objects deep.
enum Read {
    After(usize),
    Enough { at: usize, depth: usize },
}

/// An object from its `{` at `i`, member by member: `member(head, key, at)` reads the value at
/// `at`. Stops as soon as the head has enough.
fn members<'a>(
    b: &'a [u8],
    i: usize,
    head: &mut Head<'a>,
    member: impl Fn(&'a [u8], &mut Head<'a>, &[u8], usize) -> Result<Read, Invalid>,
) -> Result<Read, Invalid> {
    if b.get(i) != Some(&b'{') {
        return invalid(i, "expected an object");
    }
    let mut i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return Ok(Read::After(i + 1));
    }
    loop {
        let (key, at) = member_key(b, i)?;
        let key = unescaped(key).map_err(|_| Invalid {
            at: i,
            what: "an invalid escape in a key",
        })?;
        match member(b, head, &key, at)? {
            Read::After(end) if head.enough() => return Ok(Read::Enough { at: end, depth: 1 }),
            Read::After(end) => i = skip_ws(b, end),
            Read::Enough { at, depth } => {
                return Ok(Read::Enough {
                    at,
                    depth: depth + 1,
                });
            }
        }
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return Ok(Read::After(i + 1)),
            _ => return invalid(i, "expected ',' or '}' in an object"),
        }
    }
}

/// A key or string's bytes as written between its quotes, escapes resolved.
#[inline(always)]
fn unescaped(raw: &[u8]) -> Result<Cow<'_, [u8]>, ()> {
    if !raw.contains(&b'\\') {
        return Ok(Cow::Borrowed(raw));
    }
    resolved(raw)
}

/// [`unescaped`]'s rare case, kept out of line: serde_json resolves the escapes.
#[inline(never)]
fn resolved(raw: &[u8]) -> Result<Cow<'_, [u8]>, ()> {
    let quoted = [&b"\""[..], raw, b"\""].concat();
    serde_json::from_slice::<String>(&quoted)
        .map(|s| Cow::Owned(s.into_bytes()))
        .map_err(|_| ())
}

/// A string value at `at`, kept.
fn text<'a>(b: &'a [u8], at: usize) -> Result<(Cow<'a, str>, usize), Invalid> {
    if b.get(at) != Some(&b'"') {
        return invalid(at, "expected a string");
    }
    let end = string(b, at + 1)?;
    let bad = |what| Invalid { at, what };
    let text = match unescaped(&b[at + 1..end - 1]).map_err(|()| bad("an invalid escape"))? {
        Cow::Borrowed(raw) => {
            Cow::Borrowed(std::str::from_utf8(raw).map_err(|_| bad("not UTF-8"))?)
        }
        Cow::Owned(raw) => Cow::Owned(String::from_utf8(raw).map_err(|_| bad("not UTF-8"))?),
    };
    Ok((text, end))
}

fn frame_member<'a>(
    b: &'a [u8],
    head: &mut Head<'a>,
    key: &[u8],
    at: usize,
) -> Result<Read, Invalid> {
    match key {
        b"type" => {
            let (kind, end) = text(b, at)?;
            head.kind = Some(kind);
            Ok(Read::After(end))
        }
        b"object" => members(b, at, head, object_member),
        _ => value(b, at).map(Read::After),
    }
}

fn object_member<'a>(
    b: &'a [u8],
    head: &mut Head<'a>,
    key: &[u8],
    at: usize,
) -> Result<Read, Invalid> {
    if key == b"metadata" {
        let read = members(b, at, head, meta_member)?;
        head.metadata_read = true;
        return Ok(read);
    }
    head.object_kind |= key == b"kind";
    if head.facts.is_some() {
        return fact_member(b, head, key, at);
    }
    value(b, at).map(Read::After)
}

/// A member of the Event the facts want, or a value skipped.
fn fact_member<'a>(
    b: &'a [u8],
    head: &mut Head<'a>,
    key: &[u8],
    at: usize,
) -> Result<Read, Invalid> {
    let Some(facts) = head.facts.as_mut() else {
        return value(b, at).map(Read::After);
    };
    let slot = match key {
        b"reason" => &mut facts.reason,
        b"type" => &mut facts.event_type,
        b"count" => return number(b, at, &mut facts.count),
        b"series" if b.get(at) == Some(&b'{') => return members(b, at, head, series_member),
        b"involvedObject" if b.get(at) == Some(&b'{') => {
            return members(b, at, head, involved_member);
        }
        _ => return value(b, at).map(Read::After),
    };
    kept_text(b, at, slot)
}

fn series_member<'a>(
    b: &'a [u8],
    head: &mut Head<'a>,
    key: &[u8],
    at: usize,
) -> Result<Read, Invalid> {
    match (key, head.facts.as_mut()) {
        (b"count", Some(facts)) => number(b, at, &mut facts.series_count),
        _ => value(b, at).map(Read::After),
    }
}

fn involved_member<'a>(
    b: &'a [u8],
    head: &mut Head<'a>,
    key: &[u8],
    at: usize,
) -> Result<Read, Invalid> {
    match (key, head.facts.as_mut()) {
        (b"kind", Some(facts)) => kept_text(b, at, &mut facts.involved_kind),
        _ => value(b, at).map(Read::After),
    }
}

/// A string value kept in `slot`; `null` (or another value) read and left out.
fn kept_text<'a>(b: &'a [u8], at: usize, slot: &mut Option<Cow<'a, str>>) -> Result<Read, Invalid> {
    if b.get(at) != Some(&b'"') {
        return value(b, at).map(Read::After);
    }
    let (text, end) = text(b, at)?;
    *slot = Some(text);
    Ok(Read::After(end))
}

/// A whole number kept in `slot`; anything else read and left out.
fn number(b: &[u8], at: usize, slot: &mut Option<i64>) -> Result<Read, Invalid> {
    let end = value(b, at)?;
    *slot = std::str::from_utf8(&b[at..end])
        .ok()
        .and_then(|n| n.parse().ok());
    Ok(Read::After(end))
}

fn meta_member<'a>(
    b: &'a [u8],
    head: &mut Head<'a>,
    key: &[u8],
    at: usize,
) -> Result<Read, Invalid> {
    let slot = match (key, head.facts.as_mut()) {
        (b"namespace", _) => &mut head.namespace,
        (b"resourceVersion", _) => &mut head.resource_version,
        (b"uid", Some(facts)) => return kept_text(b, at, &mut facts.uid),
        _ => return value(b, at).map(Read::After),
    };
    let (text, end) = text(b, at)?;
    *slot = Some(text);
    Ok(Read::After(end))
}

/// Reads a LIST item (an object) as far as its metadata's namespace and resourceVersion.
pub(super) fn read_object<'a>(raw: &'a [u8], head: &mut Head<'a>) -> Result<(), FrameError> {
    members(raw, skip_ws(raw, 0), head, object_member)
        .map(|_| ())
        .map_err(json)
}

fn json(e: Invalid) -> FrameError {
    FrameError::Json(e.to_string())
}

/// Reads a frame line as a head, or whole: then once the frame is placed the rest is validated
/// without looking at what it holds (unless `head` wants the facts, which walks the object).
fn read_frame<'a>(
    line: &'a [u8],
    whole: bool,
    head: &mut Head<'a>,
) -> Result<Frame<'a>, FrameError> {
    let ended = match members(line, skip_ws(line, 0), head, frame_member).map_err(json)? {
        Read::After(at) => Some(at),
        Read::Enough { at, depth } if whole => {
            Some(rest_of_objects(line, at, depth).map_err(json)?)
        }
        Read::Enough { .. } => None,
    };
    if let Some(at) = ended {
        end(line, at).map_err(json)?;
    }
    if head.kind.as_deref() == Some("ERROR") {
        return Frame::parse(line);
    }
    let Some(kind) = head.kind.take() else {
        return Err(FrameError::Json("missing field `type`".into()));
    };
    Frame::from_parts(&kind, head.namespace.take(), head.resource_version.take())
}

impl<'a> Frame<'a> {
    /// As [`Frame::parse_head`], but the line is read to its end in the same pass and must be
    /// one complete, valid JSON value in UTF-8: what the watch writes is checked whole, the
    /// values it does not keep skipped by the validator without being built (their UTF-8
    /// checked where a string holds a non-ASCII byte).
    pub fn parse_checked(line: &'a [u8]) -> Result<Self, FrameError> {
        read_frame(line, true, &mut Head::default())
    }

    /// As [`Frame::parse_checked`], and the Event's [`Facts`] read in the same pass.
    pub fn parse_with_facts(line: &'a [u8]) -> Result<(Self, Facts<'a>), FrameError> {
        let mut head = Head {
            facts: Some(Facts::default()),
            ..Head::default()
        };
        let frame = read_frame(line, true, &mut head)?;
        Ok((frame, head.facts.unwrap_or_default()))
    }

    /// Reads only what places a frame — its type, the object's namespace and resourceVersion —
    /// and stops there: where the line is already known to be whole (the output files, a LIST
    /// page). With the API server's member order (`metadata` early, `namespace` before
    /// `resourceVersion`, the bulk after) that is the first few hundred bytes; any other order
    /// is read further, as far as it takes. ERROR frames are read whole. The line must end as
    /// an object does.
    pub fn parse_head(line: &'a [u8]) -> Result<Self, FrameError> {
        if line.trim_ascii_end().last() != Some(&b'}') {
            return Err(FrameError::Json(
                "the line does not end with '}': not a whole frame".into(),
            ));
        }
        read_frame(line, false, &mut Head::default())
    }
}
