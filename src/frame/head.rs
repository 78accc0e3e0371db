//! The early-stopping reader behind [`Frame::parse_head`]: serde visitors that read a frame's
//! type and its object's namespace and resourceVersion, then stop.

use std::borrow::Cow;

use serde::Deserialize;

use super::parse::{Frame, FrameError};

/// What [`Frame::parse_head`] has read so far.
#[derive(Default)]
pub(super) struct Head<'a> {
    pub(super) kind: Option<Cow<'a, str>>,
    pub(super) namespace: Option<Cow<'a, str>>,
    pub(super) resource_version: Option<Cow<'a, str>>,
    /// The object's metadata has been read to its end.
    pub(super) metadata_read: bool,
    /// The object has a `kind` (among the fields read).
    pub(super) object_kind: bool,
    /// Reading stopped on purpose: enough was read.
    pub(super) stopped: bool,
    /// Read to the end all the same (the line is being validated whole).
    pub(super) whole: bool,
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
        if !self.whole && self.enough() {
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
pub(super) struct ObjectSeed<'h, 'a>(pub(super) &'h mut Head<'a>);
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

/// The whole line is UTF-8: serde_json skips a string it does not keep without looking at its
/// UTF-8, so a parse that skips needs this first.
pub fn check_utf8(line: &[u8]) -> Result<(), FrameError> {
    simdutf8::basic::from_utf8(line)
        .map(|_| ())
        .map_err(|_| FrameError::Json("the line is not UTF-8".into()))
}

impl<'a> Frame<'a> {
    /// As [`Frame::parse_head`], but the line is read to its end in the same pass and must be
    /// one complete, valid JSON value in UTF-8: what the watch writes is checked whole, and the
    /// values it does not keep are skipped without being built (serde's `IgnoredAny`). UTF-8 is
    /// checked for the whole line first (serde_json skips a string it does not keep without
    /// looking at its UTF-8).
    pub fn parse_checked(line: &'a [u8]) -> Result<Self, FrameError> {
        check_utf8(line)?;
        let mut head = Head {
            whole: true,
            ..Head::default()
        };
        let mut de = serde_json::Deserializer::from_slice(line);
        serde::de::DeserializeSeed::deserialize(FrameSeed(&mut head), &mut de)
            .and_then(|()| de.end())
            .map_err(|e| FrameError::Json(e.to_string()))?;
        if head.kind.as_deref() == Some("ERROR") {
            return Frame::parse(line);
        }
        let Some(kind) = head.kind else {
            return Err(FrameError::Json("missing field `type`".into()));
        };
        Frame::from_parts(&kind, head.namespace, head.resource_version)
    }

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
