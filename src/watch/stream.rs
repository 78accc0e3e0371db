//! How the watch stream is read: HTTP chunks → lines → batches. Everything the connection
//! already holds goes into one batch; during a burst a small batch lingers a moment for the next
//! chunk, while a frame that arrives alone on a quiet stream goes at once, with no timer armed;
//! each line is read whole and checked, and anything that ends the watch comes back as its
//! [`Outcome`].

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::time::Instant;

use super::api::EventsApi;
use super::lines::{Line, LineSplitter};
use super::machine::Outcome;
use super::{ScopeWatch, WatchError};
use crate::event::EventFrame;
use crate::frame::{Batch, Frame, Outlet, ResourceVersion};
use crate::metrics::Occurred;
use crate::occurrence::Update;

/// Longest frame line accepted; longer ones are treated as a broken stream.
const MAX_LINE: usize = 16 * 1024 * 1024;
/// Watch duration asked of the server: random in [MIN, 2×MIN), as client-go's reflector does.
const WATCH_TIMEOUT_MIN: Duration = Duration::from_secs(300);
/// How long after its `timeoutSeconds` a watch the server has not ended is taken as a dead
/// connection (there is no per-read timeout; see `cluster::REQUEST_TIMEOUT`).
const OVERDUE: Duration = Duration::from_secs(60);
/// Watch bytes gathered into one batch while the connection has more ready.
const BURST_BYTES: usize = 256 * 1024;
/// The most a batch is made room for before it is filled (a burst's batch ends a chunk past
/// BURST_BYTES); a larger one grows as it fills.
const BATCH_ROOM_AT_MOST: usize = 2 * BURST_BYTES;
/// During a burst, how long a small batch waits for the next chunk before it goes to the
/// writer; a chunk that comes more than this after the one before starts a quiet stream's
/// batch, which does not wait.
const LINGER: Duration = Duration::from_millis(2);
/// Batches smaller than this linger.
const LINGER_BELOW: usize = 32 * 1024;
/// A batch's first frame waits at most about this long (plus one LINGER) for the rest.
const GATHER_AT_MOST: Duration = Duration::from_millis(10);

/// How the chunk that starts a batch came.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pace {
    /// Long after the one before: a lone frame on a quiet stream goes at once.
    Quiet,
    /// Soon after the one before: a small batch lingers a moment for the next chunk.
    Burst,
}

/// What one gathering took from the connection.
struct Gathered {
    batch: Batch,
    /// More than the first chunk was taken (it came at the gathering's start, or later).
    more: bool,
    /// How the watch ended, if it did.
    end: Option<ChunkEnd>,
}

/// Why a watch body stopped giving chunks.
enum ChunkEnd {
    /// The server ended the stream cleanly.
    Stream,
    Outcome(Outcome),
}

type BodyError<A> = <<A as EventsApi>::Body as http_body::Body>::Error;

/// The body's next frame if it is already there; `None` when it would have to wait.
async fn ready_now<B: http_body::Body + Unpin>(
    body: &mut B,
) -> Option<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
    std::future::poll_fn(|cx| match std::pin::Pin::new(&mut *body).poll_frame(cx) {
        std::task::Poll::Ready(frame) => std::task::Poll::Ready(Some(frame)),
        std::task::Poll::Pending => std::task::Poll::Ready(None),
    })
    .await
}

impl<A: EventsApi, O: Outlet> ScopeWatch<A, O> {
    /// One WATCH connection, until it ends.
    pub(super) async fn watch(&mut self, from: ResourceVersion) -> Result<Outcome, WatchError> {
        let timeout = WATCH_TIMEOUT_MIN + WATCH_TIMEOUT_MIN.mul_f64(fastrand::f64());
        let opened = Instant::now();
        let body = tokio::select! {
            _ = self.ctx.cancel.cancelled() => return Ok(Outcome::Cancelled),
            r = self.ctx.api.watch(&self.scope, &from, timeout) => r,
        };
        let mut body = match body {
            Ok(b) => b,
            Err(e) if e.is_expired() => return Ok(Outcome::Expired),
            Err(e) => return Ok(Outcome::Failed(e)),
        };
        self.ctx.health.set_watching(&self.scope, true);
        tracing::debug!(scope = %self.scope, resource_version = %from, "watching");
        let mut splitter = LineSplitter::new(MAX_LINE);
        // One stall timer for the whole watch, moved on only when it fires: arming a timer per
        // chunk would cost every event.
        let stall_timeout = self.ctx.stall_timeout;
        let mut last_chunk = Instant::now();
        // Room for the next batch, so that it is not grown by copying as it fills (`next_room`).
        let mut batch_room = 0;
        let stall = tokio::time::sleep(stall_timeout);
        tokio::pin!(stall);
        loop {
            let chunk = tokio::select! {
                biased;
                _ = self.ctx.cancel.cancelled() => return Ok(Outcome::Cancelled),
                f = body.frame() => f,
                () = &mut stall => {
                    if last_chunk.elapsed() >= stall_timeout {
                        if self.server_is_ahead().await {
                            return Ok(Outcome::Stalled);
                        }
                        if opened.elapsed() >= timeout + OVERDUE {
                            return Ok(Outcome::Broken(format!(
                                "the API server did not end the watch {}s after the {}s it was \
                                 asked for; the connection is taken as dead",
                                OVERDUE.as_secs(),
                                timeout.as_secs()
                            )));
                        }
                        last_chunk = Instant::now();
                    }
                    stall.as_mut().reset(last_chunk + stall_timeout);
                    continue;
                }
            };
            let now = Instant::now();
            let pace = if now - last_chunk > LINGER {
                Pace::Quiet
            } else {
                Pace::Burst
            };
            last_chunk = now;
            let gathered = self
                .gather(
                    chunk,
                    &mut body,
                    &mut splitter,
                    last_chunk,
                    pace,
                    batch_room,
                )
                .await;
            batch_room = next_room(batch_room, gathered.batch.len());
            // When the last chunk came: read once per batch, not per chunk.
            if gathered.more {
                last_chunk = Instant::now();
            }
            self.send(gathered.batch, last_chunk).await?;
            if let Some(end) = gathered.end {
                return Ok(match end {
                    ChunkEnd::Stream => Outcome::Closed {
                        ran_its_course: opened.elapsed() >= timeout / 2,
                    },
                    ChunkEnd::Outcome(outcome) => outcome,
                });
            }
        }
    }

    /// Everything the connection already holds, from `chunk` on, as one batch: per burst, not
    /// per chunk (the API server flushes every event on its own when it is not busy). In a burst
    /// of small chunks a small batch waits a moment for the next one rather than pay a write per
    /// frame, with one deadline per batch; a lone frame on a quiet stream, or a large batch,
    /// goes at once. `chunk` came at `gathering`; the batch starts with room for `room` bytes.
    async fn gather(
        &mut self,
        chunk: Option<Result<http_body::Frame<Bytes>, BodyError<A>>>,
        body: &mut A::Body,
        splitter: &mut LineSplitter,
        gathering: Instant,
        pace: Pace,
        room: usize,
    ) -> Gathered {
        let mut batch = Batch::with_capacity(room);
        let mut more = false;
        let mut next = Some(chunk);
        let mut ended = Ok(());
        while let Some(chunk) = next.take() {
            ended = self.take_chunk(chunk, splitter, &mut batch);
            if ended.is_err() || batch.len() >= BURST_BYTES {
                break;
            }
            next = match ready_now(body).await {
                Some(chunk) => Some(chunk),
                None if pace == Pace::Burst && batch.len() < LINGER_BELOW => {
                    self.linger(body, gathering).await
                }
                None => None,
            };
            more |= next.is_some();
        }
        Gathered {
            batch,
            more,
            end: ended.err(),
        }
    }

    /// In a burst, the next chunk for a small batch: it yields first (the other tasks run, and
    /// the server's next write often lands meanwhile; a body fed by a task of its own, as a
    /// pooled client's is, reads its next chunk then); only a chunk that has not come by then
    /// is waited for, with a timer (and a clock read), at most LINGER and never past the batch's
    /// GATHER_AT_MOST.
    async fn linger(
        &self,
        body: &mut A::Body,
        gathering: Instant,
    ) -> Option<Option<Result<http_body::Frame<Bytes>, BodyError<A>>>> {
        tokio::task::yield_now().await;
        if let Some(chunk) = ready_now(body).await {
            return Some(chunk);
        }
        let now = Instant::now();
        if now - gathering >= GATHER_AT_MOST {
            return None;
        }
        let deadline = (now + LINGER).min(gathering + GATHER_AT_MOST);
        tokio::time::timeout_at(deadline, body.frame()).await.ok()
    }

    /// Splits one chunk of the watch body into the batch. `Err` when the watch is over: the
    /// stream ended (cleanly or inside a frame), broke, or a line ended it.
    fn take_chunk<D: bytes::Buf, E: std::fmt::Display>(
        &mut self,
        chunk: Option<Result<http_body::Frame<D>, E>>,
        splitter: &mut LineSplitter,
        batch: &mut Batch,
    ) -> Result<(), ChunkEnd> {
        let mut data = match chunk {
            None if splitter.pending() > 0 => {
                return Err(ChunkEnd::Outcome(Outcome::Broken(format!(
                    "the stream ended inside a frame ({} bytes)",
                    splitter.pending()
                ))));
            }
            None => return Err(ChunkEnd::Stream),
            Some(Err(e)) => return Err(ChunkEnd::Outcome(Outcome::Broken(e.to_string()))),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => return Ok(()),
            },
        };
        // Read where it lies: no handle on the chunk's buffer is made (and dropped) per chunk.
        while data.has_remaining() {
            let piece = data.chunk();
            let taken = piece.len();
            splitter
                .push(piece, |line| self.take_line(line, batch))
                .map_err(ChunkEnd::Outcome)?;
            data.advance(taken);
        }
        Ok(())
    }

    /// Handles one line of the watch stream: data frames go into the batch, anything that ends
    /// the watch comes back as its outcome. One parse per line, also with a filter.
    fn take_line(&mut self, line: Line<'_>, batch: &mut Batch) -> Result<(), Outcome> {
        let bytes = match line {
            Line::Complete([]) => return Ok(()),
            Line::Complete(b) => b,
            Line::TooLong(n) => {
                return Err(Outcome::Broken(format!(
                    "a line of {n} bytes exceeds the {MAX_LINE}-byte limit"
                )));
            }
        };
        // A line that is not one whole, valid JSON frame is never written: the watch reconnects
        // after the last whole frame, and the server sends again what followed it.
        let metrics = &self.ctx.metrics;
        let malformed = |e: crate::frame::FrameError| {
            metrics.watch.invalid_line();
            let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(120)]).into_owned();
            Outcome::Broken(format!("malformed line, not written ({e}): {shown}"))
        };
        // Each line is read whole, once: with a filter into the frame and the Event view, which
        // is judged at once; without, for the frame's place only, the rest skipped unbuilt
        // (both validate every byte, UTF-8 included).
        let (frame, facts, kept) = match &self.ctx.keep {
            Some(keep) => {
                let (frame, view) = EventFrame::parse_frame(bytes).map_err(malformed)?;
                let facts = view.as_ref().map(EventFrame::facts).unwrap_or_default();
                (frame, facts, view.is_none_or(|v| keep(&v)))
            }
            None => {
                let (frame, facts) = Frame::parse_checked(bytes).map_err(malformed)?;
                (frame, facts, true)
            }
        };
        let (kind, namespace, rv) = match frame {
            Frame::Error(status) if status.is_expired() => return Err(Outcome::Expired),
            Frame::Error(status) => return Err(Outcome::ErrorFrame(status)),
            Frame::Bookmark(rv) => {
                self.machine.saw(rv);
                return Ok(());
            }
            Frame::Data {
                kind,
                namespace,
                resource_version,
            } => (kind, namespace, resource_version),
        };
        if !self.machine.must_write(&rv) {
            tracing::debug!(scope = %self.scope, resource_version = %rv, "skipping a frame already written");
            self.machine.saw(rv);
            return Ok(());
        }
        if !kept {
            self.machine.saw(rv);
            return Ok(());
        }
        batch.extend_from_slice(bytes);
        batch.push(b'\n');
        let update = Update::of_facts(&facts, rv.as_str(), kind);
        self.machine.wrote(rv);
        let metrics = &self.ctx.metrics;
        self.counters.frame_written(kind);
        let n = self.occurrences.count(update).occurrences;
        let occurred = Occurred {
            event_type: value(&facts.event_type),
            reason: value(&facts.reason),
            kind: value(&facts.involved_kind),
            namespace: namespace.as_deref().map_or(&[][..], str::as_bytes),
        };
        self.counters.occurred(&metrics.events, occurred, n);
        Ok(())
    }
}

/// A label's bytes: the value, or empty.
fn value<'s>(s: &'s Option<std::borrow::Cow<'_, [u8]>>) -> &'s [u8] {
    s.as_deref().unwrap_or_default()
}

/// Room for the next batch after one of `len` bytes was gathered in `room`: half as much again
/// as `len` (batches in a burst differ by up to a chunk), or an eighth less than `room` if that
/// is more (a burst's batches alternate between one chunk and many, and a quiet stream's room
/// shrinks back within a few dozen); at most BATCH_ROOM_AT_MOST.
fn next_room(room: usize, len: usize) -> usize {
    (len * 3 / 2).max(room - room / 8).min(BATCH_ROOM_AT_MOST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_room_follows_bursts_and_shrinks_back_on_a_quiet_stream() {
        // A burst: a large batch, then one of a single chunk: the room stays near the large one.
        let room = next_room(0, 300 * 1024);
        assert_eq!(room, 450 * 1024);
        let after_small = next_room(room, 64 * 1024);
        assert!(after_small >= 300 * 1024 + 64 * 1024, "{after_small}");
        // Never more than the bound, however large the batch.
        assert_eq!(next_room(0, 10 * BURST_BYTES), BATCH_ROOM_AT_MOST);
        // A quiet stream's single frames: back to a frame's 1.5× within a few dozen batches.
        let mut room = BATCH_ROOM_AT_MOST;
        for _ in 0..64 {
            room = next_room(room, 1300);
        }
        assert_eq!(room, 1950);
    }
}
