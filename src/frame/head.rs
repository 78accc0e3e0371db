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
}

impl Head<'_> {
    /// Enough to place a data or BOOKMARK frame. An ERROR frame is never enough: it is read
    /// whole for its Status.
    fn enough(&self) -> bool {
        self.kind.as_deref().is_some_and(|k| k != "ERROR")
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
    value(b, at).map(Read::After)
}

fn meta_member<'a>(
    b: &'a [u8],
    head: &mut Head<'a>,
    key: &[u8],
    at: usize,
) -> Result<Read, Invalid> {
    let slot = match key {
        b"namespace" => &mut head.namespace,
        b"resourceVersion" => &mut head.resource_version,
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
/// without looking at what it holds.
fn read_frame(line: &[u8], whole: bool) -> Result<Frame<'_>, FrameError> {
    let mut head = Head::default();
    let ended = match members(line, skip_ws(line, 0), &mut head, frame_member).map_err(json)? {
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
    let Some(kind) = head.kind else {
        return Err(FrameError::Json("missing field `type`".into()));
    };
    Frame::from_parts(&kind, head.namespace, head.resource_version)
}

impl<'a> Frame<'a> {
    /// As [`Frame::parse_head`], but the line is read to its end in the same pass and must be
    /// one complete, valid JSON value in UTF-8: what the watch writes is checked whole, the
    /// values it does not keep skipped by the validator without being built (their UTF-8
    /// checked where a string holds a non-ASCII byte).
    pub fn parse_checked(line: &'a [u8]) -> Result<Self, FrameError> {
        read_frame(line, true)
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
        read_frame(line, false)
    }
}
