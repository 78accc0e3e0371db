//! A chunked HTTP/1.1 body (RFC 9112 §7.1) decoded from the bytes a connection gave: small
//! chunks (an event each, from a busy API server) gathered into one piece by copying, a large
//! one, or one that came alone (a quiet watch's event), handed out where it lies.

use bytes::{Buf, BytesMut};

/// Why a body is not valid chunked encoding.
#[derive(Debug)]
pub(super) struct BadChunk(pub &'static str);

/// Longest chunk-size line (with its extensions) or trailer section.
const MAX_CHUNK_LINE: usize = 4 * 1024;

/// Where a chunked body's decoding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunked {
    /// At a chunk-size line.
    Size,
    /// Inside a chunk's data: this many bytes left.
    Data(u64),
    /// At the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty one.
    Trailers,
}

/// A chunk's data at least this long is handed out where it lies instead of being copied.
const LARGE_PIECE: usize = 16 * 1024;

/// Decodes what `raw` holds of a chunked body into `out`, taking it from `raw`; `Ok(true)` once
/// the body has ended. It stops at a piece of data of LARGE_PIECE or more, and at a lone piece
/// while `out` is empty, left in `raw` for the caller to take whole.
fn decode(state: &mut Chunked, raw: &mut BytesMut, out: &mut BytesMut) -> Result<bool, BadChunk> {
    loop {
        match *state {
            Chunked::Size => {
                let Some(nl) = memchr::memchr(b'\n', raw) else {
                    return line_too_long(raw).map(|()| false);
                };
                let size = chunk_size(&raw[..nl])?;
                raw.advance(nl + 1);
                *state = match size {
                    0 => Chunked::Trailers,
                    n => Chunked::Data(n),
                };
            }
            Chunked::Data(left) => {
                if raw.is_empty() {
                    return Ok(false);
                }
                let taken = held(raw, left);
                // Left where it lies: a large piece, or a lone one (all the read brought of the
                // body but its CRLF: a quiet watch's event, taken without a copy or a buffer).
                if taken >= LARGE_PIECE || out.is_empty() && raw.len() - taken <= 2 {
                    return Ok(false);
                }
                if out.is_empty() {
                    out.reserve(raw.len());
                }
                out.extend_from_slice(&raw[..taken]);
                raw.advance(taken);
                *state = after_data(left, taken);
            }
            Chunked::DataEnd => match raw.get(..2) {
                None if raw.first().is_none_or(|b| *b == b'\r') => return Ok(false),
                Some(b"\r\n") => {
                    raw.advance(2);
                    *state = Chunked::Size;
                }
                _ => return Err(BadChunk("a chunk's data does not end with CRLF")),
            },
            Chunked::Trailers => {
                let Some(nl) = memchr::memchr(b'\n', raw) else {
                    return line_too_long(raw).map(|()| false);
                };
                let empty = raw[..nl] == *b"\r" || nl == 0;
                raw.advance(nl + 1);
                if empty {
                    return Ok(true);
                }
            }
        }
    }
}

/// The next data frame of a chunked body from what `raw` holds, and whether the body ended:
/// small chunks (an event each, from a busy API server) gathered into one frame by copying, a
/// large or a lone one handed out where it lies.
pub(super) fn take_chunked(
    state: &mut Chunked,
    raw: &mut BytesMut,
) -> Result<(BytesMut, bool), BadChunk> {
    let mut out = BytesMut::new();
    let ended = decode(state, raw, &mut out)?;
    if let Chunked::Data(left) = *state
        && out.is_empty()
    {
        let taken = held(raw, left);
        *state = after_data(left, taken);
        out = raw.split_to(taken);
    }
    Ok((out, ended))
}

/// How many of the `left` bytes a body still has to give `raw` holds.
pub(super) fn held(raw: &[u8], left: u64) -> usize {
    raw.len().min(usize::try_from(left).unwrap_or(usize::MAX))
}

/// Where the decoding is once `taken` of a chunk's `left` data bytes are taken.
fn after_data(left: u64, taken: usize) -> Chunked {
    match left - taken as u64 {
        0 => Chunked::DataEnd,
        n => Chunked::Data(n),
    }
}

fn line_too_long(raw: &[u8]) -> Result<(), BadChunk> {
    match raw.len() > MAX_CHUNK_LINE {
        true => Err(BadChunk("a chunk-size or trailer line is too long")),
        false => Ok(()),
    }
}

/// A chunk-size line's size (`1*HEXDIG [ chunk-ext ] CRLF`, without its `\n`).
fn chunk_size(line: &[u8]) -> Result<u64, BadChunk> {
    let line = line
        .strip_suffix(b"\r")
        .ok_or(BadChunk("a chunk-size line does not end with CRLF"))?;
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let rest = &line[digits..];
    let ext = rest.iter().position(|b| !matches!(b, b' ' | b'\t'));
    if !(1..=15).contains(&digits) || ext.is_some_and(|i| rest[i] != b';') {
        return Err(BadChunk("a chunk size is not a hex number"));
    }
    let hex = std::str::from_utf8(&line[..digits]).map_err(|_| BadChunk("not hex"))?;
    u64::from_str_radix(hex, 16).map_err(|_| BadChunk("a chunk size is not a hex number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `wire` fed in pieces of `step` bytes: the data, and whether the body ended.
    fn decoded(wire: &[u8], step: usize) -> Result<(Vec<u8>, bool), BadChunk> {
        let (mut state, mut raw, mut got) = (Chunked::Size, BytesMut::new(), Vec::new());
        for piece in wire.chunks(step) {
            raw.extend_from_slice(piece);
            loop {
                let (out, ended) = take_chunked(&mut state, &mut raw)?;
                got.extend_from_slice(&out);
                if ended {
                    return Ok((got, true));
                }
                if out.is_empty() {
                    break;
                }
            }
        }
        Ok((got, false))
    }

    #[test]
    fn a_lone_chunk_is_handed_out_where_it_lies() {
        let (mut state, mut raw) = (Chunked::Size, BytesMut::new());
        raw.extend_from_slice(b"6\r\nevent\n\r\n");
        let read = raw.as_ptr() as usize..raw.as_ptr() as usize + raw.len();
        let (out, ended) = take_chunked(&mut state, &mut raw).unwrap();
        assert_eq!((&out[..], ended), (&b"event\n"[..], false));
        assert!(
            read.contains(&(out.as_ptr() as usize)),
            "the read's own bytes, not a copy"
        );
        // Its CRLF, then the next event in a read of its own: the same again.
        raw.extend_from_slice(b"6\r\nother\n\r\n");
        let (out, _) = take_chunked(&mut state, &mut raw).unwrap();
        assert_eq!(&out[..], b"other\n");
        // Two in one read: gathered into one piece, as a burst's are.
        raw.extend_from_slice(b"2\r\na\n\r\n2\r\nb\n\r\n");
        let (out, _) = take_chunked(&mut state, &mut raw).unwrap();
        assert_eq!(&out[..], b"a\nb\n");
    }

    #[test]
    fn chunks_decode_the_same_however_the_reads_cut_them() {
        let wire =
            b"5\r\nhello\r\n1;name=value\r\n \r\nA\r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\n";
        for step in 1..=wire.len() {
            assert_eq!(
                decoded(wire, step).unwrap(),
                (b"hello 0123456789".to_vec(), true),
                "{step}"
            );
        }
        // Without the end: what came so far, not ended.
        let cut = &wire[..wire.len() - 20];
        assert_eq!(
            decoded(cut, 7).unwrap(),
            (b"hello 0123456789".to_vec(), false)
        );
    }

    #[test]
    fn small_chunks_come_gathered_and_a_large_one_whole_however_the_reads_cut_them() {
        let large = vec![b'x'; 3 * LARGE_PIECE];
        let mut wire = b"5\r\nhello\r\n1\r\n \r\n".to_vec();
        wire.extend_from_slice(format!("{:x}\r\n", large.len()).as_bytes());
        wire.extend_from_slice(&large);
        wire.extend_from_slice(b"\r\n3\r\nend\r\n0\r\n\r\n");
        let whole = [&b"hello "[..], &large, b"end"].concat();
        for step in [7, 1000, LARGE_PIECE + 5, wire.len()] {
            let (mut state, mut raw) = (Chunked::Size, BytesMut::new());
            let (mut got, mut frames, mut ended) = (Vec::new(), Vec::new(), false);
            for piece in wire.chunks(step) {
                raw.extend_from_slice(piece);
                loop {
                    let (out, end) = take_chunked(&mut state, &mut raw).unwrap();
                    ended |= end;
                    if out.is_empty() {
                        break;
                    }
                    got.extend_from_slice(&out);
                    frames.push(out.len());
                }
            }
            assert!(ended, "{step}");
            assert_eq!(got, whole, "{step}");
            if step == wire.len() {
                assert_eq!(
                    frames,
                    [6, large.len(), 3],
                    "the large chunk whole, the rest gathered"
                );
            }
        }
    }

    #[test]
    fn broken_chunking_is_refused() {
        for wire in [
            &b"x\r\nhello\r\n"[..],
            b"5\nhello\r\n",
            b"5\r\nhelloXY",
            b"\r\n",
            b"10000000000000000\r\n",
            b"5 x\r\n",
        ] {
            assert!(
                decoded(wire, 3).is_err(),
                "{}",
                String::from_utf8_lossy(wire)
            );
        }
        let long = [b"1;".as_slice(), &[b'a'; MAX_CHUNK_LINE + 10]].concat();
        assert!(decoded(&long, 100).is_err());
    }
}
