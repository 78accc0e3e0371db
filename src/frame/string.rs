//! The JSON string scan under the frame check (`validate`): a string's rest from its opening
//! quote, sixteen bytes at a time, escapes checked one by one, and UTF-8 checked from a
//! string's first non-ASCII byte to its closing quote; and how a line is said to be invalid.

use wide::bytemuck::cast;
use wide::{i8x16, u8x16};

/// Where and why a line is not one valid JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid {
    /// Byte offset in the line.
    pub at: usize,
    pub what: &'static str,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

pub(super) fn invalid<T>(at: usize, what: &'static str) -> Result<T, Invalid> {
    Err(Invalid { at, what })
}

/// A string's rest, from just after its opening quote; returns the offset after its closing one.
/// Sixteen bytes at a time (SSE2 on x86-64, NEON on aarch64, through `wide`): the common end, a
/// closing quote before any `\`, control character or non-ASCII byte, is told from one mask and
/// the byte its first bit points at. Inlined into its callers: the next token's place waits on
/// this one's end.
#[inline(always)]
pub(super) fn string(b: &[u8], i: usize) -> Result<usize, Invalid> {
    string_told(b, i).map(|(end, _)| end)
}

/// As [`string`], also telling whether the string is plain: ASCII without escapes, as its
/// fast path saw it (`false` may still be plain, where the slow path read it).
#[inline(always)]
pub(super) fn string_told(b: &[u8], mut i: usize) -> Result<(usize, bool), Invalid> {
    while let Some(stops) = stops16(b, i) {
        if stops != 0 {
            return stopped(b, i, stops);
        }
        i += 16;
    }
    tail(b, i)
}

/// [`string_told`] where fewer than 16 bytes are left: the same, on a copy padded with NUL (a
/// stop) past the line's end.
#[inline(never)]
fn tail(b: &[u8], i: usize) -> Result<(usize, bool), Invalid> {
    let rest = b.get(i..).unwrap_or_default();
    let n = rest.len().min(16);
    let mut v = [0u8; 16];
    v[..n].copy_from_slice(&rest[..n]);
    stopped(b, i, stops(u8x16::new(v)))
}

/// Where a string's fast scan stopped (`stops` from `i`, not zero): at its closing quote, or
/// at an escape, a control character, a non-ASCII byte or the end of the line.
#[inline(always)]
fn stopped(b: &[u8], i: usize, stops: u32) -> Result<(usize, bool), Invalid> {
    let at = i + stops.trailing_zeros() as usize;
    if b.get(at) == Some(&b'"') {
        return Ok((at + 1, true));
    }
    string_rest(b, at).map(|end| (end, false))
}

/// A string's rest from `i`, where the fast path met an escape, a control character, a
/// non-ASCII byte or the end of the line: escapes checked one by one, sixteen
/// bytes at a time between them; from the first non-ASCII byte to the closing quote, UTF-8.
#[inline(never)]
fn string_rest(b: &[u8], mut i: usize) -> Result<usize, Invalid> {
    let mut non_ascii = None;
    loop {
        match b.get(i) {
            Some(b'"') => {
                if let Some(from) = non_ascii {
                    utf8(b, from, i)?;
                }
                return Ok(i + 1);
            }
            Some(b'\\') => i = escape(b, i + 1)?,
            Some(0..0x20) => return invalid(i, "a control character inside a string"),
            Some(0x80..) => {
                non_ascii.get_or_insert(i);
                i += 1;
            }
            Some(_) => i += 1,
            None => return invalid(i, "the line ends inside a string"),
        }
        // Non-ASCII bytes stop the skip only until the first is known.
        let stop_non_ascii = if non_ascii.is_none() { u32::MAX } else { 0 };
        while let Some(found) = specials16(b, i) {
            let stop = found.specials | found.non_ascii & stop_non_ascii;
            if stop != 0 {
                i += stop.trailing_zeros() as usize;
                break;
            }
            i += 16;
        }
    }
}

/// `b[from..to]` is UTF-8 (a quote never falls inside a multi-byte character, so a string's
/// bytes can be checked apart from the rest of the line).
fn utf8(b: &[u8], from: usize, to: usize) -> Result<(), Invalid> {
    match simdutf8::compat::from_utf8(&b[from..to]) {
        Ok(_) => Ok(()),
        Err(e) => invalid(from + e.valid_up_to(), "not UTF-8 inside a string"),
    }
}

/// Bits for the 16 bytes from `i`.
struct Found {
    /// `"`, `\` and control characters.
    specials: u32,
    /// Bytes above 0x7F.
    non_ascii: u32,
}

/// The bytes of interest among the 16 from `i`; `None` if the line has fewer left.
fn specials16(b: &[u8], i: usize) -> Option<Found> {
    let v = u8x16::new(b.get(i..i + 16)?.try_into().ok()?);
    let control = v.min(u8x16::splat(0x1f)).simd_eq(v);
    Some(Found {
        specials: (quote_or_backslash(v) | control).to_bitmask(),
        non_ascii: v.to_bitmask(),
    })
}

/// The bytes among the 16 from `i` that end a plain string's run: `"`, `\\`, control characters
/// and bytes above 0x7F (the last two at once: below 0x20 as signed bytes); `None` if the line
/// has fewer left.
#[inline(always)]
fn stops16(b: &[u8], i: usize) -> Option<u32> {
    Some(stops(u8x16::new(b.get(i..i + 16)?.try_into().ok()?)))
}

#[inline(always)]
fn stops(v: u8x16) -> u32 {
    let signed: i8x16 = cast(v);
    let control_or_high: u8x16 = cast(signed.simd_lt(i8x16::splat(0x20)));
    (quote_or_backslash(v) | control_or_high).to_bitmask()
}

#[inline(always)]
fn quote_or_backslash(v: u8x16) -> u8x16 {
    v.simd_eq(u8x16::splat(b'"')) | v.simd_eq(u8x16::splat(b'\\'))
}

/// An escape's rest, from just after its backslash.
fn escape(b: &[u8], i: usize) -> Result<usize, Invalid> {
    match b.get(i) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 1),
        Some(b'u') => match b.get(i + 1..i + 5) {
            Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => Ok(i + 5),
            _ => invalid(i, "a \\u escape without four hex digits"),
        },
        _ => invalid(i, "an invalid escape in a string"),
    }
}
