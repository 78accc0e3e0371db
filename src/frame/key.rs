//! An object's key as the frame reader tells it apart: one number for a short key, so that
//! matching it against the names the reader keeps is a compare each.

use std::ops::Range;

/// A key as the walk tells it apart: up to 16 bytes as one number (its bytes little-endian,
/// zero beyond its end), so each key looked for is one compare; longer keys are `Plain(0)`
/// (none looked for is that long); a key with a `\\` may be any key once resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Name {
    Plain(u128),
    Escaped,
}

pub(super) const fn word(name: &[u8]) -> u128 {
    let mut w = 0u128;
    let mut i = 0;
    while i < name.len() {
        w |= (name[i] as u128) << (8 * i);
        i += 1;
    }
    w
}

/// The names the frame reader looks for, each a [`Name`] constant, and all of them in
/// [`NAMES`]: one list, so what the walk shows the reader (`validate::KeySet`) cannot miss one.
macro_rules! names {
    ($($name:ident = $key:literal),* $(,)?) => {
        $(pub(super) const $name: Name = Name::Plain(word($key));)*
        /// Every name the frame reader looks for.
        pub(super) const NAMES: &[&[u8]] = &[$($key),*];
    };
}

names! {
    TYPE = b"type",
    OBJECT = b"object",
    METADATA = b"metadata",
    SERIES = b"series",
    INVOLVED_OBJECT = b"involvedObject",
    REASON = b"reason",
    COUNT = b"count",
    KIND = b"kind",
    NAMESPACE = b"namespace",
    RESOURCE_VERSION = b"resourceVersion",
    UID = b"uid",
}

/// The [`Name`] of the key at `key` in `b`: sixteen bytes read at once where the line has them
/// (a key is followed by at least its closing quote and colon, so it nearly always does). A key
/// the walk saw `plain` is not looked through for a backslash again.
#[inline(always)]
pub(super) fn name(b: &[u8], key: Range<usize>, plain: bool) -> Name {
    let len = key.len();
    if len == 0 {
        return Name::Plain(0);
    }
    let raw = match b.get(key.start..key.start + 16) {
        Some(sixteen) if len <= 16 => <[u8; 16]>::try_from(sixteen).unwrap_or_default(),
        _ if len <= 16 => {
            let mut w = [0u8; 16];
            w[..len].copy_from_slice(&b[key.clone()]);
            w
        }
        _ if has_escape(&b[key]) => return Name::Escaped,
        _ => return Name::Plain(0),
    };
    let mask = u128::MAX >> (8 * (16 - len));
    let w = u128::from_le_bytes(raw) & mask;
    if plain {
        return Name::Plain(w);
    }
    // A `\\` among the key's bytes (the padding is zero, never a backslash).
    const ONES: u128 = u128::MAX / 0xff;
    let x = w ^ (ONES * u128::from(b'\\'));
    match x.wrapping_sub(ONES) & !x & (ONES << 7) {
        0 => Name::Plain(w),
        _ => Name::Escaped,
    }
}

/// Whether a key or string as written holds an escape (short: no call out for it).
#[inline(always)]
pub(super) fn has_escape(raw: &[u8]) -> bool {
    raw.contains(&b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The name of `key` written in a line, with `after` following its closing quote.
    fn named(key: &str, after: &str) -> Name {
        let line = format!("\"{key}\"{after}");
        let line = line.as_bytes();
        let plain = name(line, 1..1 + key.len(), true);
        let told = name(line, 1..1 + key.len(), false);
        if !key.contains('\\') {
            assert_eq!(plain, told, "{key}");
        }
        told
    }

    #[test]
    fn a_key_is_its_bytes_wherever_it_ends_and_an_escape_is_told() {
        for after in [":1}", ":\"a long value that follows the key\"}", ""] {
            assert_eq!(named("type", after), TYPE);
            assert_eq!(named("resourceVersion", after), RESOURCE_VERSION);
            assert_ne!(named("types", after), TYPE);
            assert_ne!(named("typ", after), TYPE);
            assert_eq!(named("", after), Name::Plain(0));
            assert_eq!(
                named("sixteen-bytes-ab", after),
                Name::Plain(word(b"sixteen-bytes-ab"))
            );
            assert_eq!(named("seventeen-bytes-a", after), Name::Plain(0));
            assert_eq!(named("t\\u0079pe", after), Name::Escaped);
            assert_eq!(named("a\\\\", after), Name::Escaped);
            assert_eq!(named("resourceVersio\\u006e", after), Name::Escaped);
        }
    }
}
