//! Every field the filter language knows: names and aliases, kind, the API server's
//! field-selector label, and how to read it from an [`EventFrame`]; look-up and suggestions.

use crate::event::EventFrame;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Text,
    Number,
    Time,
}

/// Every field the language knows: its names (canonical first, then aliases), its kind, and the
/// field-selector label the API server accepts for it (core/v1 Events), if any.
pub struct FieldInfo {
    pub names: &'static [&'static str],
    pub(super) kind: Kind,
    pub selector: Option<&'static str>,
    pub(super) get: for<'a> fn(&'a EventFrame<'a>) -> Option<Got<'a>>,
}

pub(super) enum Got<'a> {
    Text(&'a str),
    Number(i64),
}

fn text<'a>(s: &'a Option<std::borrow::Cow<'a, str>>) -> Option<Got<'a>> {
    s.as_deref().map(Got::Text)
}

macro_rules! field {
    ([$($name:literal),+], $kind:ident, $sel:expr, |$f:ident| $get:expr) => {
        FieldInfo { names: &[$($name),+], kind: Kind::$kind, selector: $sel, get: |$f| $get }
    };
}

pub static FIELDS: &[FieldInfo] = &[
    field!(["frame.type"], Text, None, |f| Some(Got::Text(
        &f.frame_type
    ))),
    field!(["type"], Text, Some("type"), |f| text(&f.object.event_type)),
    field!(["reason"], Text, Some("reason"), |f| text(&f.object.reason)),
    field!(["message"], Text, None, |f| text(&f.object.message)),
    field!(
        ["metadata.namespace", "namespace", "ns"],
        Text,
        Some("metadata.namespace"),
        |f| text(&f.object.metadata.namespace)
    ),
    field!(["metadata.name"], Text, Some("metadata.name"), |f| text(
        &f.object.metadata.name
    )),
    field!(["metadata.uid", "uid"], Text, None, |f| text(
        &f.object.metadata.uid
    )),
    field!(["metadata.resourceVersion"], Text, None, |f| text(
        &f.object.metadata.resource_version
    )),
    field!(["metadata.creationTimestamp"], Time, None, |f| text(
        &f.object.metadata.creation_timestamp
    )),
    field!(
        ["involvedObject.kind", "kind"],
        Text,
        Some("involvedObject.kind"),
        |f| text(&f.object.involved_object.kind)
    ),
    field!(
        ["involvedObject.name", "name"],
        Text,
        Some("involvedObject.name"),
        |f| text(&f.object.involved_object.name)
    ),
    field!(
        ["involvedObject.namespace"],
        Text,
        Some("involvedObject.namespace"),
        |f| text(&f.object.involved_object.namespace)
    ),
    field!(
        ["involvedObject.uid"],
        Text,
        Some("involvedObject.uid"),
        |f| text(&f.object.involved_object.uid)
    ),
    field!(
        ["involvedObject.apiVersion"],
        Text,
        Some("involvedObject.apiVersion"),
        |f| text(&f.object.involved_object.api_version)
    ),
    field!(
        ["involvedObject.resourceVersion"],
        Text,
        Some("involvedObject.resourceVersion"),
        |f| text(&f.object.involved_object.resource_version)
    ),
    field!(
        ["involvedObject.fieldPath"],
        Text,
        Some("involvedObject.fieldPath"),
        |f| text(&f.object.involved_object.field_path)
    ),
    field!(
        ["source.component", "source", "component"],
        Text,
        Some("source"),
        |f| text(&f.object.source.component)
    ),
    field!(["source.host", "host"], Text, None, |f| text(
        &f.object.source.host
    )),
    field!(
        ["reportingComponent"],
        Text,
        Some("reportingComponent"),
        |f| text(&f.object.reporting_component)
    ),
    field!(["reportingInstance"], Text, None, |f| text(
        &f.object.reporting_instance
    )),
    field!(["action"], Text, None, |f| text(&f.object.action)),
    field!(["count"], Number, None, |f| f.object.count.map(Got::Number)),
    field!(["series.count"], Number, None, |f| f
        .object
        .series
        .as_ref()
        .and_then(|s| s.count)
        .map(Got::Number)),
    field!(["firstTimestamp"], Time, None, |f| text(
        &f.object.first_timestamp
    )),
    field!(["lastTimestamp"], Time, None, |f| text(
        &f.object.last_timestamp
    )),
    field!(["eventTime"], Time, None, |f| text(&f.object.event_time)),
    field!(["series.lastObservedTime"], Time, None, |f| f
        .object
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_deref())
        .map(Got::Text)),
    field!(["time"], Time, None, |f| f.object.time().map(Got::Text)),
];

/// A field by any of its names, with its index in [`FIELDS`].
pub(super) fn lookup(name: &str) -> Option<(usize, &'static FieldInfo)> {
    FIELDS
        .iter()
        .enumerate()
        .find(|(_, f)| f.names.contains(&name))
}

/// The known name closest to a misspelt one: a small edit distance, or one containing the other.
pub(super) fn suggest(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    FIELDS
        .iter()
        .flat_map(|f| f.names.iter())
        .map(|n| {
            (
                strsim::damerau_levenshtein(&name, &n.to_ascii_lowercase()),
                *n,
            )
        })
        .filter(|(d, n)| {
            *d <= 2.max(n.len() / 4) || (name.len() >= 4 && n.to_ascii_lowercase().contains(&name))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}
