//! Whole-line JSON validation for the watch's hot path: is this line exactly one JSON value
//! (RFC 8259 grammar) in UTF-8, and where is it not? Nothing is built and nothing is kept.
//! Outside strings any byte above 0x7F is a grammar error; a string that holds one is checked
//! as UTF-8 from there to its closing quote, so an ASCII line is read once.
//!
//! It accepts exactly what serde_json accepts when it skips a value, on lines that are UTF-8
//! (the unit tests compare the two on every fixture damaged at every byte), nested however deep:
//! one loop, strings skipped sixteen bytes at a time (`string`). A [`Tap`] is shown the members
//! of the outermost object and of the objects it enters, so the frame is placed and its facts
//! read in the same pass (`head`); a line then costs less than serde_json's skip alone
//! (`cargo bench --bench validate`).

use std::ops::Range;

pub(super) use super::string::{Invalid, invalid, string, string_told};

/// What a [`Tap`] does with a member it is shown.
pub(super) enum Member {
    /// The walk reads the value, from this offset, without showing what is in it.
    Value(usize),
    /// The value at this offset is an object with members: the walk shows them too.
    Enter(usize),
    /// The tap has read the value; the walk goes on after it, from this offset.
    Read(usize),
    /// As `Read`, and the tap wants nothing more of this object: the rest of its members are
    /// not shown.
    ReadAll(usize),
    /// The tap has what it wants: the walk stops here.
    Stop,
    /// The value is not what it must be: the walk stops with the tap's [`Tap::failure`].
    Failed,
}

/// Sees the members of the outermost object, and of the objects it asks to enter: where each
/// key's bytes are (between its quotes, escapes unresolved), how deep (1: the outermost
/// object's), and the offset of its value. What a tap keeps, it reads where it is, so the line
/// is still read once.
pub(super) trait Tap<'a> {
    /// The plain keys (ASCII, no escape) it may want, as [`KeySet`] tells them: a plain key
    /// outside them is not shown (its value is read by the walk). Keys with an escape or a
    /// non-ASCII byte are always shown.
    const KEYS: KeySet = KeySet::ALL;
    /// What it does with the member (its answer fits in two registers: a failure is kept
    /// by the tap and asked for with [`Tap::failure`]).
    fn member(&mut self, b: &'a [u8], depth: usize, key: Key, at: usize) -> Member;
    /// Why it answered [`Member::Failed`].
    fn failure(&mut self) -> Invalid;
}

/// Where a member's key is (between its quotes, escapes as written), and whether the walk's
/// string scan saw it plain: ASCII without an escape (`false` may still be plain).
pub(super) struct Key {
    pub(super) range: Range<usize>,
    pub(super) plain: bool,
}

/// Plain keys told apart by their length and first byte, as a walk can at no cost: a bit per
/// first byte (its low six bits) for each length up to 15, and one set for 16 and longer.
#[derive(Clone, Copy)]
pub(super) struct KeySet([u64; 17]);

impl KeySet {
    /// Every key.
    pub(super) const ALL: KeySet = KeySet([u64::MAX; 17]);

    /// The set holding (at least) these keys: a key of another length or first byte is not one.
    pub(super) const fn of(keys: &[&[u8]]) -> KeySet {
        let mut set = [0u64; 17];
        let mut k = 0;
        while k < keys.len() {
            let key = keys[k];
            assert!(!key.is_empty());
            let len = if key.len() < 16 { key.len() } else { 16 };
            set[len] |= 1 << (key[0] & 63);
            k += 1;
        }
        KeySet(set)
    }

    /// Whether the plain key `key` may be in the set.
    #[inline(always)]
    fn may_hold(&self, key: &[u8]) -> bool {
        let first = key.first().copied().unwrap_or_default();
        self.0[key.len().min(16)] >> (first & 63) & 1 == 1
    }
}

/// Whether the value at `at` is an object with members (one a tap may enter).
pub(super) fn has_members(b: &[u8], at: usize) -> bool {
    b.get(at) == Some(&b'{') && b.get(skip_ws(b, at + 1)) != Some(&b'}')
}

/// The line `b` is one JSON value (whitespace around it allowed), its members shown to `tap`;
/// `Ok(false)` when the tap stopped the walk before the end.
pub(super) fn read<'a>(b: &'a [u8], tap: &mut impl Tap<'a>) -> Result<bool, Invalid> {
    match walk(b, skip_ws(b, 0), tap)? {
        Some(at) => end(b, at).map(|()| true),
        None => Ok(false),
    }
}

/// Reads the value at `i` to its end (`None`: the tap stopped it first).
fn walk<'a, T: Tap<'a>>(b: &'a [u8], mut i: usize, tap: &mut T) -> Result<Option<usize>, Invalid> {
    let mut open = Nesting::default();
    let mut value_next = true;
    // The depth whose members the tap sees: the outermost object's, then those it enters.
    let mut shown = 1;
    loop {
        if value_next {
            match b.get(i) {
                Some(b'{') => {
                    i = skip_ws(b, i + 1);
                    if b.get(i) != Some(&b'}') {
                        open.push(true);
                        match member(b, i, open.depth, &mut shown, tap)? {
                            Next::Value(at) => {
                                i = at;
                                continue;
                            }
                            Next::After(end) => i = end,
                            Next::Stop => return Ok(None),
                        }
                    } else {
                        i += 1;
                    }
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
                // Whitespace is met where it is (the API server writes none): no look for it
                // before every token.
                Some(b' ' | b'\n' | b'\t' | b'\r') => {
                    i = skip_ws(b, i);
                    continue;
                }
                Some(_) => return invalid(i, "expected a value"),
                None => return invalid(i, "the line ends where a value should be"),
            }
        }
        // After a value: the next one in its container, or the container's end.
        let Some(in_object) = open.in_object() else {
            return Ok(Some(i));
        };
        value_next = true;
        match (b.get(i), in_object) {
            (Some(b','), true) => match member(b, i + 1, open.depth, &mut shown, tap)? {
                Next::Value(at) => i = at,
                Next::After(end) => {
                    i = end;
                    value_next = false;
                }
                Next::Stop => return Ok(None),
            },
            (Some(b','), false) => i += 1,
            (Some(b'}'), true) | (Some(b']'), false) => {
                open.pop();
                shown = shown.min(open.depth);
                i += 1;
                value_next = false;
            }
            (Some(b' ' | b'\n' | b'\t' | b'\r'), _) => {
                i = skip_ws(b, i);
                value_next = false;
            }
            (Some(_), true) => return invalid(i, "expected ',' or '}' in an object"),
            (Some(_), false) => return invalid(i, "expected ',' or ']' in an array"),
            (None, _) => return invalid(i, "the line ends inside an object or array"),
        }
    }
}

/// Where the walk goes on after a member's key.
enum Next {
    /// Its value, from this offset.
    Value(usize),
    /// After its value (read by the tap), from this offset.
    After(usize),
    Stop,
}

/// A member's key from its opening quote at `i`, in an object `depth` deep; shown to the tap
/// when the tap sees that depth (`shown`), which it deepens when the tap enters the value.
#[inline(always)]
fn member<'a, T: Tap<'a>>(
    b: &'a [u8],
    i: usize,
    depth: usize,
    shown: &mut usize,
    tap: &mut T,
) -> Result<Next, Invalid> {
    let (key, plain, at) = member_key(b, i)?;
    if depth != *shown || plain && !T::KEYS.may_hold(&b[key.clone()]) {
        return Ok(Next::Value(at));
    }
    Ok(match tap.member(b, depth, Key { range: key, plain }, at) {
        Member::Value(at) => Next::Value(at),
        Member::Enter(at) => {
            *shown = depth + 1;
            Next::Value(at)
        }
        Member::Read(end) => Next::After(end),
        Member::ReadAll(end) => {
            *shown = depth - 1;
            Next::After(end)
        }
        Member::Stop => Next::Stop,
        Member::Failed => return Err(tap.failure()),
    })
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

#[inline(always)]
pub(super) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    // The API server writes no whitespace: one compare tells the common case.
    if b.get(i).is_none_or(|&c| c > b' ') {
        return i;
    }
    while let Some(b' ' | b'\n' | b'\t' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// An object's key and its colon, from the key's opening quote (or whitespace before it): the
/// key's bytes between its quotes (escapes as written), whether it is plain (see
/// [`string_told`]) and the offset of the value (whitespace skipped).
#[inline(always)]
fn member_key(b: &[u8], mut i: usize) -> Result<(Range<usize>, bool, usize), Invalid> {
    if b.get(i) != Some(&b'"') {
        i = skip_ws(b, i);
        if b.get(i) != Some(&b'"') {
            return invalid(i, "expected a key (a string) in an object");
        }
    }
    let (end, plain) = string_told(b, i + 1)?;
    let mut colon = end;
    if b.get(colon) != Some(&b':') {
        colon = skip_ws(b, end);
        if b.get(colon) != Some(&b':') {
            return invalid(colon, "expected ':' after an object's key");
        }
    }
    Ok((i + 1..end - 1, plain, skip_ws(b, colon + 1)))
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
pub(super) fn number(b: &[u8], mut i: usize) -> Result<usize, Invalid> {
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

/// A JSON number (as [`number`] reads it) as an `i64`: `None` with a fraction or exponent, or
/// out of range.
pub(super) fn whole(number: &[u8]) -> Option<i64> {
    let (negative, digits) = match number {
        [b'-', digits @ ..] => (true, digits),
        digits => (false, digits),
    };
    // Accumulated on the negative side, where i64::MIN fits.
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
    }
    if negative { Some(n) } else { n.checked_neg() }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = include_str!("../../tests/data/fixtures/frames.jsonl");

    fn validate(b: &[u8]) -> Result<(), Invalid> {
        read(b, &mut Untapped).map(|_| ())
    }

    /// A walk that only validates.
    struct Untapped;

    impl Tap<'_> for Untapped {
        fn member(&mut self, _: &[u8], _: usize, _: Key, at: usize) -> Member {
            Member::Value(at)
        }
        fn failure(&mut self) -> Invalid {
            Invalid {
                at: 0,
                what: "unreachable",
            }
        }
    }

    /// The reference: serde_json skipping the value whole, on a line that is UTF-8 (serde_json
    /// does not look at the UTF-8 of a string it skips).
    fn serde_accepts(b: &[u8]) -> bool {
        std::str::from_utf8(b).is_ok() && serde_json::from_slice::<serde::de::IgnoredAny>(b).is_ok()
    }

    #[test]
    fn a_whole_number_is_what_rust_parses_and_nothing_else_is() {
        for n in [
            "0",
            "-0",
            "7",
            "-42",
            "9223372036854775807",
            "-9223372036854775808",
        ] {
            assert_eq!(whole(n.as_bytes()), n.parse().ok(), "{n}");
        }
        for n in [
            "9223372036854775808",
            "-9223372036854775809",
            "1.0",
            "1e3",
            "-1E-2",
            "0.5",
        ] {
            assert_eq!(whole(n.as_bytes()), None, "{n}");
        }
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
                    b"\x00",
                    b"\x01",
                    b"\x1f",
                    b" ",
                    b"\x7f",
                    b"\x80",
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
    fn a_key_set_holds_its_keys_and_tells_most_others_apart() {
        let set = KeySet::of(&[b"type", b"resourceVersion", b"uid"]);
        for key in [&b"type"[..], b"resourceVersion", b"uid", b"tick", b"ulm"] {
            assert!(set.may_hold(key), "{}", String::from_utf8_lossy(key));
        }
        for key in [
            &b""[..],
            b"name",
            b"typed",
            b"message",
            b"reportingComponent",
            b"ty",
        ] {
            assert!(!set.may_hold(key), "{}", String::from_utf8_lossy(key));
        }
        for key in [&b""[..], b"anything", b"a-key-longer-than-sixteen-bytes"] {
            assert!(KeySet::ALL.may_hold(key));
        }
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
