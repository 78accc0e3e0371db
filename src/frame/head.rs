//! What a frame line says of itself, read by the validator's own walk (a [`Tap`] on its first
//! three object levels): the watch type, the object's namespace and resourceVersion, and the
//! Event's [`Facts`]. The line is read once: each kept value where the walk meets it, every
//! other value skipped unbuilt. Read as a head, the walk stops once the frame is placed.

use std::borrow::Cow;

use super::key::{
    COUNT, INVOLVED_OBJECT, KIND, METADATA, NAMES, NAMESPACE, Name, OBJECT, REASON,
    RESOURCE_VERSION, SERIES, TYPE, UID, has_escape, name, word,
};
use super::parse::{Frame, FrameError};
use super::validate::{
    self, Invalid, Key, KeySet, Member, Tap, has_members, invalid, read, string_told,
};

/// What counting an Event's occurrences needs of a data frame, read in the pass that places
/// and validates it: its uid, its counts, and what it is labelled by.
///
/// The strings are the bytes of their JSON strings, escapes resolved: the validator has checked
/// they are UTF-8, and what uses them (a hash, a comparison) needs no `str` made of them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Facts<'a> {
    pub uid: Option<Cow<'a, [u8]>>,
    pub count: Option<i64>,
    pub series_count: Option<i64>,
    pub reason: Option<Cow<'a, [u8]>>,
    /// The Event's `type` (Normal, Warning).
    pub event_type: Option<Cow<'a, [u8]>>,
    /// `involvedObject.kind`.
    pub involved_kind: Option<Cow<'a, [u8]>>,
}

impl Facts<'_> {
    /// The Event's count: `series.count`, else `count`.
    pub fn occurrences(&self) -> Option<i64> {
        self.series_count.or(self.count)
    }
}

/// The members on the way to a kept value: `Object` (the frame's), its `Metadata`, `Series`
/// and `InvolvedObject`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Place {
    #[default]
    Elsewhere,
    Object,
    Metadata,
    Series,
    InvolvedObject,
}

/// How far to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Until the frame is placed.
    Head,
    /// To the end of the line.
    Whole,
}

/// What the walk has found so far.
pub(super) struct Fields<'a> {
    reading: Reading,
    /// The member each of the first two levels is in (`path[1]`: the outermost object's).
    path: [Place; 3],
    pub(super) kind: Option<Cow<'a, [u8]>>,
    pub(super) namespace: Option<Cow<'a, str>>,
    pub(super) resource_version: Option<Cow<'a, str>>,
    /// The object's metadata has been read to its end.
    metadata_read: bool,
    /// The object has a `kind`.
    pub(super) object_kind: bool,
    pub(super) facts: Facts<'a>,
    /// Why a member was refused.
    failed: Option<Invalid>,
}

impl<'a> Fields<'a> {
    fn new(reading: Reading) -> Self {
        Fields {
            reading,
            path: [Place::Elsewhere; 3],
            kind: None,
            namespace: None,
            resource_version: None,
            metadata_read: false,
            object_kind: false,
            facts: Facts::default(),
            failed: None,
        }
    }

    /// Reads a LIST item (an object, read as a frame's object is) whole.
    pub(super) fn of_item(raw: &'a [u8]) -> Result<Self, FrameError> {
        let mut fields = Fields::new(Reading::Whole);
        fields.path[1] = Place::Object;
        read(raw, &mut Item(&mut fields)).map_err(json)?;
        Ok(fields)
    }

    /// Enough to place a data or BOOKMARK frame (an ERROR frame is read whole for its Status).
    fn placed(&self) -> bool {
        self.kind.as_deref().is_some_and(|k| k != b"ERROR")
            && self.resource_version.is_some()
            && (self.metadata_read || self.namespace.is_some())
    }

    /// A member at `depth` under the path so far, its key at `key`.
    #[inline(always)]
    fn at(&mut self, b: &'a [u8], depth: usize, key: Key, at: usize) -> Member {
        match name(b, key.range.clone(), key.plain) {
            Name::Escaped => self.escaped(b, depth, &b[key.range], at),
            name => self.named(b, depth, name, at),
        }
    }

    /// As [`Fields::at`], for a key told by its [`name`] (not [`Name::Escaped`]).
    #[inline(always)]
    fn named(&mut self, b: &'a [u8], depth: usize, key: Name, at: usize) -> Member {
        if self.reading == Reading::Head {
            self.metadata_read |= self.path[2] == Place::Metadata && depth <= 2;
            if self.placed() {
                return Member::Stop;
            }
        }
        let Fields {
            path,
            kind,
            namespace,
            resource_version,
            object_kind,
            facts,
            ..
        } = self;
        let read = match (path[depth - 1], key) {
            (Place::Elsewhere, TYPE) => {
                string_or_null(b, at).and_then(|()| kept_bytes(b, at, kind))
            }
            (Place::Elsewhere, OBJECT) => Ok(enter(path, b, depth, at, Place::Object)),
            (Place::Object, METADATA) => Ok(enter(path, b, depth, at, Place::Metadata)),
            (Place::Object, SERIES) => Ok(enter(path, b, depth, at, Place::Series)),
            (Place::Object, INVOLVED_OBJECT) => {
                Ok(enter(path, b, depth, at, Place::InvolvedObject))
            }
            (Place::Object, REASON) => kept_bytes(b, at, &mut facts.reason),
            (Place::Object, TYPE) => kept_bytes(b, at, &mut facts.event_type),
            (Place::Object, COUNT) => number(b, at, &mut facts.count),
            (Place::Object, KIND) => {
                *object_kind = true;
                Ok(Member::Value(at))
            }
            (Place::Metadata, NAMESPACE) => required(b, at, namespace),
            (Place::Metadata, RESOURCE_VERSION) => required(b, at, resource_version),
            (Place::Metadata, UID) => kept_bytes(b, at, &mut facts.uid),
            (Place::Series, COUNT) => number(b, at, &mut facts.series_count),
            (Place::InvolvedObject, KIND) => {
                kept_bytes(b, at, &mut facts.involved_kind).map(all_read)
            }
            _ => Ok(Member::Value(at)),
        };
        // Once the metadata's namespace, resourceVersion and uid are read, its other members
        // (creationTimestamp, managedFields…) are not shown; nor the involvedObject's after its
        // kind. The API server writes them in that order, so the tap sees fewer keys.
        let read = match read {
            Ok(Member::Read(end))
                if path[depth - 1] == Place::Metadata
                    && namespace.is_some()
                    && resource_version.is_some()
                    && facts.uid.is_some() =>
            {
                Ok(Member::ReadAll(end))
            }
            read => read,
        };
        match read {
            Ok(Member::Read(_) | Member::ReadAll(_))
                if self.reading == Reading::Head && self.placed() =>
            {
                Member::Stop
            }
            Ok(member) => member,
            Err(e) => {
                self.failed = Some(e);
                Member::Failed
            }
        }
    }

    /// A key written with escapes, resolved and read as if written plainly (rare: the API
    /// server writes keys plainly).
    #[inline(never)]
    fn escaped(&mut self, b: &'a [u8], depth: usize, key: &[u8], at: usize) -> Member {
        let quoted = [&b"\""[..], key, b"\""].concat();
        let Ok(plain) = serde_json::from_slice::<String>(&quoted) else {
            self.failed = Some(Invalid {
                at,
                what: "an invalid escape in a key",
            });
            return Member::Failed;
        };
        let key = match plain.len() {
            1..=16 if !plain.contains('\\') => Name::Plain(word(plain.as_bytes())),
            _ => Name::Plain(0),
        };
        self.named(b, depth, key, at)
    }
}

/// A value read, and nothing more wanted of its object.
fn all_read(member: Member) -> Member {
    match member {
        Member::Read(end) => Member::ReadAll(end),
        other => other,
    }
}

/// Into the object at `at`, a member `depth` deep, which holds what is kept at `place`.
fn enter(path: &mut [Place; 3], b: &[u8], depth: usize, at: usize, place: Place) -> Member {
    match path.get_mut(depth) {
        Some(path) if has_members(b, at) => {
            *path = place;
            Member::Enter(at)
        }
        _ => Member::Value(at),
    }
}

/// Every key [`Fields::named`] acts on; any other it answers with `Member::Value`.
const WANTED: KeySet = KeySet::of(NAMES);

/// A frame: its type, and its object entered for the rest.
impl<'a> Tap<'a> for Fields<'a> {
    const KEYS: KeySet = WANTED;
    #[inline(always)]
    fn member(&mut self, b: &'a [u8], depth: usize, key: Key, at: usize) -> Member {
        self.at(b, depth, key, at)
    }
    fn failure(&mut self) -> Invalid {
        self.failed.take().unwrap_or(Invalid {
            at: 0,
            what: "a member refused",
        })
    }
}

/// A LIST item: an object read as a frame's object, one level up.
struct Item<'f, 'a>(&'f mut Fields<'a>);

impl<'a> Tap<'a> for Item<'_, 'a> {
    const KEYS: KeySet = WANTED;
    #[inline(always)]
    fn member(&mut self, b: &'a [u8], depth: usize, key: Key, at: usize) -> Member {
        self.0.at(b, depth + 1, key, at)
    }
    fn failure(&mut self) -> Invalid {
        self.0.failure()
    }
}

fn json(e: Invalid) -> FrameError {
    FrameError::Json(e.to_string())
}

/// A string value at `at` (its opening quote known): its bytes, escapes resolved, and the
/// offset after it.
#[inline(always)]
fn string_bytes(b: &[u8], at: usize) -> Result<(Cow<'_, [u8]>, usize), Invalid> {
    let (end, plain) = string_told(b, at + 1)?;
    let raw = &b[at + 1..end - 1];
    if plain || !has_escape(raw) {
        return Ok((Cow::Borrowed(raw), end));
    }
    let text = serde_json::from_slice::<String>(&b[at..end]).map_err(|_| Invalid {
        at,
        what: "an invalid escape",
    })?;
    Ok((Cow::Owned(text.into_bytes()), end))
}

/// A string value at `at` as text (the walk's string scan has checked the UTF-8 of a string
/// with a non-ASCII byte; this makes the `str`).
fn text(b: &[u8], at: usize) -> Result<(Cow<'_, str>, usize), Invalid> {
    let (bytes, end) = string_bytes(b, at)?;
    let bad = |_| Invalid {
        at,
        what: "not UTF-8",
    };
    let text = match bytes {
        Cow::Borrowed(raw) => Cow::Borrowed(std::str::from_utf8(raw).map_err(bad)?),
        Cow::Owned(raw) => Cow::Owned(String::from_utf8(raw).map_err(|e| bad(e.utf8_error()))?),
    };
    Ok((text, end))
}

/// A string's bytes kept in `slot` (escapes resolved); any other value read and left out.
#[inline(always)]
fn kept_bytes<'a>(
    b: &'a [u8],
    at: usize,
    slot: &mut Option<Cow<'a, [u8]>>,
) -> Result<Member, Invalid> {
    if b.get(at) != Some(&b'"') {
        return Ok(Member::Value(at));
    }
    let (bytes, end) = string_bytes(b, at)?;
    *slot = Some(bytes);
    Ok(Member::Read(end))
}

/// A string kept in `slot`; any other value read and left out.
#[inline(always)]
fn kept<'a>(b: &'a [u8], at: usize, slot: &mut Option<Cow<'a, str>>) -> Result<Member, Invalid> {
    if b.get(at) != Some(&b'"') {
        return Ok(Member::Value(at));
    }
    let (text, end) = text(b, at)?;
    *slot = Some(text);
    Ok(Member::Read(end))
}

/// A string kept in `slot`, or `null`; any other value is not a frame.
fn required<'a>(
    b: &'a [u8],
    at: usize,
    slot: &mut Option<Cow<'a, str>>,
) -> Result<Member, Invalid> {
    string_or_null(b, at).and_then(|()| kept(b, at, slot))
}

/// The value at `at` is a string or `null` (where anything else is not a frame).
fn string_or_null(b: &[u8], at: usize) -> Result<(), Invalid> {
    match b.get(at) {
        Some(b'"' | b'n') => Ok(()),
        _ => invalid(at, "expected a string"),
    }
}

/// A whole number that fits an `i64` kept in `slot`; any other value read by the walk and
/// `slot` left empty.
fn number(b: &[u8], at: usize, slot: &mut Option<i64>) -> Result<Member, Invalid> {
    *slot = None;
    if !matches!(b.get(at), Some(b'-' | b'0'..=b'9')) {
        return Ok(Member::Value(at));
    }
    let end = validate::number(b, at)?;
    *slot = validate::whole(&b[at..end]);
    Ok(Member::Read(end))
}

impl<'a> Frame<'a> {
    /// Reads a frame line whole, in one pass: it must be one complete, valid JSON value in
    /// UTF-8 (the values not kept are skipped by the validator without being built, their UTF-8
    /// checked where a string holds a non-ASCII byte), and the frame is placed and the Event's
    /// [`Facts`] read where the walk meets them.
    pub fn parse_checked(line: &'a [u8]) -> Result<(Self, Facts<'a>), FrameError> {
        let mut fields = Fields::new(Reading::Whole);
        read(line, &mut fields).map_err(json)?;
        let frame = fields.frame(line)?;
        Ok((frame, fields.facts))
    }

    /// Reads only what places a frame — its type, the object's namespace and resourceVersion —
    /// and stops there: where the line is already known to be whole (the output files). With
    /// the API server's member order (`metadata` early, `namespace` before `resourceVersion`,
    /// the bulk after) that is the first few hundred bytes; any other order is read further, as
    /// far as it takes. ERROR frames are read whole. The line must end as an object does.
    pub fn parse_head(line: &'a [u8]) -> Result<Self, FrameError> {
        if line.trim_ascii_end().last() != Some(&b'}') {
            return Err(FrameError::Json(
                "the line does not end with '}': not a whole frame".into(),
            ));
        }
        let mut fields = Fields::new(Reading::Head);
        read(line, &mut fields).map_err(json)?;
        fields.frame(line)
    }
}

impl<'a> Fields<'a> {
    /// The frame the fields place (an ERROR frame read again for its Status).
    fn frame(&mut self, line: &'a [u8]) -> Result<Frame<'a>, FrameError> {
        if self.kind.as_deref() == Some(b"ERROR") {
            return Frame::parse(line);
        }
        let Some(kind) = self.kind.take() else {
            return Err(FrameError::Json("missing field `type`".into()));
        };
        Frame::from_parts(&kind, self.namespace.take(), self.resource_version.take())
    }
}
