//! Whole-line JSON validation for the watch's hot path: is this line exactly one JSON value
//! (RFC 8259 grammar) in UTF-8, and where is it not? Nothing is built and nothing is kept.
//! Outside strings any byte above 0x7F is a grammar error; a string that holds one is checked
//! as UTF-8 from there to its closing quote, so an ASCII line is read once.
//!
//! It accepts exactly what serde_json accepts when it skips a value, on lines that are UTF-8
//! (the unit tests compare the two on every fixture damaged at every byte), nested however deep:
//! one loop, no visitors, strings skipped sixteen bytes at a time. With the frame placed in the
//! same pass (`head`), a line costs less than serde_json's skip alone (`cargo bench --bench
//! validate`).

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

/// One JSON value, from its first byte at `i`; returns the offset just after it.
pub(super) fn value(b: &[u8], i: usize) -> Result<usize, Invalid> {
    match b.get(i) {
        Some(b'"') => string(b, i + 1),
        _ => walk(b, i, Nesting::default(), true),
    }
}

/// The rest of `depth` nested objects, from just after the value of a member of the innermost:
/// their remaining members and closing braces; returns the offset after the outermost `}`.
pub(super) fn rest_of_objects(b: &[u8], i: usize, depth: usize) -> Result<usize, Invalid> {
    let mut open = Nesting::default();
    (0..depth).for_each(|_| open.push(true));
    walk(b, i, open, false)
}

/// Reads on from `i` (a value there when `value_next`, else just after one) until the last of
/// the `open` containers has ended.
fn walk(b: &[u8], mut i: usize, mut open: Nesting, mut value_next: bool) -> Result<usize, Invalid> {
    loop {
        if value_next {
            match b.get(i) {
                Some(b'{') => {
                    i = skip_ws(b, i + 1);
                    if b.get(i) != Some(&b'}') {
                        open.push(true);
                        i = key(b, i)?;
                        continue;
                    }
                    i += 1;
                }
                Some(b'[') => {
                    i = skip_ws(b, i + 1);
                    if b.get(i) != Some(&b']') {
                        open.push(false);
                        continue;
                    }
                    i += 1;
                }
                Some(b'"') => i = string(b, i + 1)?,
                Some(b't') => i = literal(b, i, b"true")?,
                Some(b'f') => i = literal(b, i, b"false")?,
                Some(b'n') => i = literal(b, i, b"null")?,
                Some(b'-' | b'0'..=b'9') => i = number(b, i)?,
                Some(_) => return invalid(i, "expected a value"),
                None => return invalid(i, "the line ends where a value should be"),
            }
        }
        // After a value: the next one in its container, or the container's end.
        let Some(in_object) = open.in_object() else {
            return Ok(i);
        };
        i = skip_ws(b, i);
        value_next = true;
        match (b.get(i), in_object) {
            (Some(b','), true) => i = key(b, skip_ws(b, i + 1))?,
            (Some(b','), false) => i = skip_ws(b, i + 1),
            (Some(b'}'), true) | (Some(b']'), false) => {
                open.pop();
                i += 1;
                value_next = false;
            }
            (Some(_), true) => return invalid(i, "expected ',' or '}' in an object"),
            (Some(_), false) => return invalid(i, "expected ',' or ']' in an array"),
            (None, _) => return invalid(i, "the line ends inside an object or array"),
        }
    }
}

/// The objects and arrays a value is inside, a bit each (set: an object), the innermost in the
/// lowest bit; 64 levels live in a register, deeper ones spill to the heap.
#[derive(Default)]
struct Nesting {
    top: u64,
    spilled: Vec<u64>,
    depth: usize,
}

impl Nesting {
    fn push(&mut self, object: bool) {
        if self.depth > 0 && self.depth.is_multiple_of(64) {
            self.spilled.push(self.top);
        }
        self.top = self.top << 1 | u64::from(object);
        self.depth += 1;
    }

    fn pop(&mut self) {
        self.depth -= 1;
        self.top >>= 1;
        if self.depth > 0 && self.depth.is_multiple_of(64) {
            self.top = self.spilled.pop().unwrap_or_default();
        }
    }

    /// Whether the innermost container is an object; `None` at the top level.
    fn in_object(&self) -> Option<bool> {
        (self.depth > 0).then_some(self.top & 1 == 1)
    }
}

/// Nothing but whitespace from `i` to the end of the line.
pub(super) fn end(b: &[u8], i: usize) -> Result<(), Invalid> {
    let i = skip_ws(b, i);
    match i == b.len() {
        true => Ok(()),
        false => invalid(i, "trailing characters after the value"),
    }
}

pub(super) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\t' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// An object's key and its colon, from the key's opening quote; returns the offset of the
/// value (whitespace skipped).
#[inline(always)]
fn key(b: &[u8], i: usize) -> Result<usize, Invalid> {
    let (_, at) = member_key(b, i)?;
    Ok(at)
}

/// As [`key`], with the key's bytes between its quotes (escapes as written).
#[inline(always)]
pub(super) fn member_key(b: &[u8], i: usize) -> Result<(&[u8], usize), Invalid> {
    if b.get(i) != Some(&b'"') {
        return invalid(i, "expected a key (a string) in an object");
    }
    let end = string(b, i + 1)?;
    let colon = skip_ws(b, end);
    match b.get(colon) {
        Some(b':') => Ok((&b[i + 1..end - 1], skip_ws(b, colon + 1))),
        _ => invalid(colon, "expected ':' after an object's key"),
    }
}

/// A string's rest, from just after its opening quote; returns the offset after its closing one.
/// Sixteen bytes at a time (SSE2 on x86-64, NEON on aarch64, through `wide`): the common end, a
/// closing quote before any `\`, control character or non-ASCII byte, is told from the masks
/// alone. Inlined into its callers: the next token's place waits on this one's end.
#[inline(always)]
pub(super) fn string(b: &[u8], mut i: usize) -> Result<usize, Invalid> {
    while let Some(found) = specials16(b, i) {
        let any = found.specials | found.non_ascii;
        if any != 0 {
            let first = any & any.wrapping_neg();
            let at = i + first.trailing_zeros() as usize;
            if found.quotes & first != 0 {
                return Ok(at + 1);
            }
            return string_rest(b, at);
        }
        i += 16;
    }
    string_rest(b, i)
}

/// A string's rest from `i`, where the fast path met an escape, a control character or a
/// non-ASCII byte, or the line has fewer than 16 bytes left: escapes checked one by one, sixteen
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
    quotes: u32,
    /// `"`, `\` and control characters.
    specials: u32,
    /// Bytes above 0x7F.
    non_ascii: u32,
}

/// The bytes of interest among the 16 from `i`; `None` if the line has fewer left.
fn specials16(b: &[u8], i: usize) -> Option<Found> {
    use wide::u8x16;
    let v = u8x16::new(b.get(i..i + 16)?.try_into().ok()?);
    let quote = v.simd_eq(u8x16::splat(b'"'));
    let backslash = v.simd_eq(u8x16::splat(b'\\'));
    let control = v.min(u8x16::splat(0x1f)).simd_eq(v);
    Some(Found {
        quotes: quote.to_bitmask(),
        specials: (quote | backslash | control).to_bitmask(),
        non_ascii: v.to_bitmask(),
    })
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

fn literal(b: &[u8], i: usize, word: &'static [u8]) -> Result<usize, Invalid> {
    match b.get(i..i + word.len()) {
        Some(w) if w == word => Ok(i + word.len()),
        _ => invalid(i, "expected true, false or null"),
    }
}

fn digits(b: &[u8], mut i: usize) -> usize {
    while let Some(b'0'..=b'9') = b.get(i) {
        i += 1;
    }
    i
}

/// `-? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?`
fn number(b: &[u8], mut i: usize) -> Result<usize, Invalid> {
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    i = match b.get(i) {
        Some(b'0') => i + 1,
        Some(b'1'..=b'9') => digits(b, i + 1),
        _ => return invalid(i, "a number without digits"),
    };
    if b.get(i) == Some(&b'.') {
        let end = digits(b, i + 1);
        if end == i + 1 {
            return invalid(end, "a number without digits after its '.'");
        }
        i = end;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        let end = digits(b, i);
        if end == i {
            return invalid(end, "a number without digits in its exponent");
        }
        i = end;
    }
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = include_str!("../../tests/data/fixtures/frames.jsonl");

    fn validate(b: &[u8]) -> Result<(), Invalid> {
        end(b, value(b, skip_ws(b, 0))?)
    }

    /// The reference: serde_json skipping the value whole, on a line that is UTF-8 (serde_json
    /// does not look at the UTF-8 of a string it skips).
    fn serde_accepts(b: &[u8]) -> bool {
        std::str::from_utf8(b).is_ok() && serde_json::from_slice::<serde::de::IgnoredAny>(b).is_ok()
    }

    #[test]
    fn accepts_what_serde_json_accepts_and_nothing_else() {
        let cases: &[&[u8]] = &[
            b"{}",
            b"[]",
            b" {\"a\" : [1, -0.5e+3, 2E7, true, false, null, \"x\\u00e9\\n\"] } ",
            b"\"\"",
            b"0",
            b"-0",
            b"[[[[]]]]",
            br#"{"a":{"b":{"c":[{}]}}}"#,
            b"",
            b" ",
            b"{",
            b"{\"a\"}",
            b"{\"a\":}",
            b"{\"a\":1,}",
            b"[1,]",
            b"[1 2]",
            b"{1:2}",
            b"01",
            b"[01]",
            b"1.",
            b"1e",
            b"1e+",
            b"-",
            b".5",
            b"tru",
            b"nul",
            b"\"a",
            b"\"\\x\"",
            b"\"\\u12\"",
            b"\"\\u12G4\"",
            b"\"a\tb\"",
            b"\"a\x7fb\"",
            b"{}}",
            b"{} x",
            b"[}",
            b"{]",
            b"\"a\\\"",
            b"\"12345678901234567\\\"12345678\"",
            b"\"1234567\"\"",
            b"\"\xc3\xa9\"",
            b"\"\xe9\"",
            b"[\"\xc3\xa9\", \xc3\xa9]",
            b"\xef\xbb\xbf{}",
        ];
        for &case in cases {
            assert_eq!(
                validate(case).is_ok(),
                serde_accepts(case),
                "{}",
                String::from_utf8_lossy(case)
            );
        }
    }

    /// Strings of every length around the 16-byte step, with each special byte at every place
    /// (also after an escape, and with the line ending right after the string or 16 bytes
    /// later).
    #[test]
    fn strings_agree_at_every_length_and_place() {
        const SIXTEEN: &[u8] = b"                ";
        for len in 0..40 {
            for at in 0..len {
                for special in [
                    &b"\""[..],
                    b"\\",
                    b"\\n",
                    b"\\u00e9",
                    b"\\q",
                    b"\x01",
                    b"\x7f",
                    b"\xc3\xa9",
                    "\u{1F600}".as_bytes(),
                    b"\xc3",
                    b"\xa9",
                    b"\xc0\x80",
                    b"\xed\xa0\x80",
                    b"\xf4\x90\x80\x80",
                    b"\xff",
                ] {
                    let (before, after) = (b"a".repeat(at), b"a".repeat(len - at));
                    for (head, tail) in [
                        (&b""[..], &b""[..]),
                        (b"", SIXTEEN),
                        (b"\\n", b""),
                        (b"\\n", SIXTEEN),
                    ] {
                        let line = [b"\"", head, &before, special, &after, b"\"", tail].concat();
                        assert_eq!(
                            validate(&line).is_ok(),
                            serde_accepts(&line),
                            "{}",
                            String::from_utf8_lossy(&line)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn agrees_with_serde_json_on_every_fixture_damaged_everywhere() {
        let mut compared = 0;
        let mut rejected = 0;
        for line in FIXTURES.lines() {
            let b = line.as_bytes();
            assert!(validate(b).is_ok(), "{line}");
            for at in 0..b.len() {
                for c in [
                    b'"', b'\\', b'\n', 0x01, b'}', b']', b',', b':', b'x', b'0', b' ', 0xc3, 0xff,
                ] {
                    let mut d = b.to_vec();
                    d[at] = c;
                    let ok = validate(&d).is_ok();
                    assert_eq!(ok, serde_accepts(&d), "{}", String::from_utf8_lossy(&d));
                    compared += 1;
                    rejected += usize::from(!ok);
                }
                assert_eq!(validate(&b[..at]).is_ok(), serde_accepts(&b[..at]));
            }
        }
        assert!(
            compared > 50_000 && rejected > 30_000,
            "{compared} {rejected}"
        );
    }

    #[test]
    fn nesting_has_no_limit() {
        for depth in [63, 64, 65, 127, 128, 129, 256, 257, 1000, 100_000] {
            let line = format!("{}0{}", r#"[{"a":"#.repeat(depth), "}]".repeat(depth));
            assert!(validate(line.as_bytes()).is_ok(), "{depth}");
            assert!(serde_accepts(line.as_bytes()), "{depth}");
            let unbalanced = format!("{}0{}", r#"[{"a":"#.repeat(depth), "]}".repeat(depth));
            assert!(validate(unbalanced.as_bytes()).is_err(), "{depth}");
        }
    }

    #[test]
    fn says_where_and_what() {
        let e = validate(br#"{"a":"x","b":tru}"#).unwrap_err();
        assert_eq!((e.at, e.what), (13, "expected true, false or null"));
        assert_eq!(
            validate(b"{\"a\":\"x\x01\"}").unwrap_err().to_string(),
            "a control character inside a string at byte 7"
        );
    }
}
