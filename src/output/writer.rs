//! The writer: what the watches send, in order, into the [`Sink`].
//!
//! One [`Core`] holds the sink and what is pending, behind a mutex. The writer thread takes
//! messages from a bounded channel and does everything slow: rotation (its `fsync`), retries
//! with backoff while writes fail, and syncing when a scope becomes covered. A watch that hands
//! over a batch first tries [`OutputHandle::send`]'s inline path: when nothing is queued or
//! pending, the output is healthy and the batch fits the file without a rotation, it appends the
//! batch itself, at once — an `append` to the page cache, no hand-over to another thread and no
//! second wake-up per event. Anything else goes through the channel, behind what is queued.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{CHANNEL_BATCHES, FLUSH_BYTES, OutputError, Sink, fitting};
use crate::backoff::Backoff;
use crate::frame::{Closed, Outlet, ResourceVersion, Scope, Write as Message};
use crate::health::Health;
use crate::metrics::Metrics;

/// What the writer did, reported when it ends.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    pub bytes: u64,
    pub writes: u64,
    pub failures: u64,
}

/// Where the writer records what reached the output, as it goes (on the writer thread, or
/// inline on a watch's): the checkpoint.
pub trait Progress: Send + 'static {
    /// Everything sent for `scope` up to `rv` is written: the scope's write position.
    fn written(&mut self, scope: &Scope, rv: &ResourceVersion);
    /// Whether the output already covers `scope` (a LIST's end then needs no sync).
    fn covers(&self, scope: &Scope) -> bool;
    /// Everything sent for `scope` before its LIST ended is written and synced.
    fn covered(&mut self, scope: &Scope);
}

/// What the watches hold to hand lines to the output.
#[derive(Clone)]
pub struct OutputHandle {
    tx: mpsc::Sender<Message>,
    shared: Arc<Shared>,
}

struct Shared {
    core: Mutex<Core>,
    /// Messages sent through the channel and not yet taken in by the writer thread.
    in_flight: AtomicUsize,
    /// The writer thread has ended.
    closed: AtomicBool,
}

struct Core {
    sink: Box<dyn Sink>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
    retry: Backoff,
    stats: WriterStats,
    progress: Box<dyn Progress>,
    /// Lines taken in and not yet written.
    pending: Vec<u8>,
    /// Positions whose lines are still pending: reported once those are written.
    positions: Vec<(Scope, ResourceVersion)>,
}

/// Starts the writer thread. It ends when every handle is dropped, after writing and syncing
/// all it received; or, once `cancel` fires, at a write that still fails.
pub fn spawn_writer(
    sink: impl Sink,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
    retry: Backoff,
    progress: impl Progress,
) -> (OutputHandle, JoinHandle<Result<WriterStats, OutputError>>) {
    let (tx, rx) = mpsc::channel::<Message>(CHANNEL_BATCHES);
    health.set_output_ok(true);
    let shared = Arc::new(Shared {
        core: Mutex::new(Core {
            sink: Box::new(sink),
            health,
            metrics,
            cancel,
            retry,
            stats: WriterStats::default(),
            progress: Box::new(progress),
            pending: Vec::with_capacity(FLUSH_BYTES * 2),
            positions: Vec::new(),
        }),
        in_flight: AtomicUsize::new(0),
        closed: AtomicBool::new(false),
    });
    let thread_shared = shared.clone();
    let handle = std::thread::Builder::new()
        .name("output-writer".into())
        .spawn(move || {
            let ended = run(&thread_shared, rx);
            thread_shared.closed.store(true, Ordering::SeqCst);
            ended
        })
        .expect("spawning the writer thread");
    (OutputHandle { tx, shared }, handle)
}

impl Shared {
    fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl OutputHandle {
    /// Hands a message to the output, in order after everything this watch sent before: inline
    /// when it can be (see the module's doc), else through the channel (waiting while it is
    /// full).
    pub async fn send(&self, message: Message) -> Result<(), Closed> {
        let message = match self.try_inline(message) {
            Ok(()) => return Ok(()),
            Err(message) => message,
        };
        self.queue(message).await
    }

    async fn queue(&self, message: Message) -> Result<(), Closed> {
        self.shared.in_flight.fetch_add(1, Ordering::SeqCst);
        self.tx.send(message).await.map_err(|_| {
            self.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
            Closed
        })
    }

    /// Through the channel only, from a thread outside the runtime (tests).
    #[cfg(test)]
    pub fn blocking_send(&self, message: Message) -> Result<(), Closed> {
        self.shared.in_flight.fetch_add(1, Ordering::SeqCst);
        self.tx.blocking_send(message).map_err(|_| {
            self.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
            Closed
        })
    }

    /// Through the channel only, without waiting: `false` when it is full.
    pub fn try_send(&self, message: Message) -> Result<bool, Closed> {
        self.shared.in_flight.fetch_add(1, Ordering::SeqCst);
        match self.tx.try_send(message) {
            Ok(()) => Ok(true),
            Err(e) => {
                self.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
                match e {
                    mpsc::error::TrySendError::Full(_) => Ok(false),
                    mpsc::error::TrySendError::Closed(_) => Err(Closed),
                }
            }
        }
    }

    /// The inline path; gives the message back when it must go through the channel.
    fn try_inline(&self, message: Message) -> Result<(), Message> {
        let shared = &self.shared;
        if shared.in_flight.load(Ordering::SeqCst) != 0 || shared.closed.load(Ordering::SeqCst) {
            return Err(message);
        }
        // The writer thread holds the lock while it works (or retries): then queue.
        let Ok(mut core) = shared.core.try_lock() else {
            return Err(message);
        };
        // Checked again under the lock: nothing queued ahead, nothing pending, healthy.
        if shared.in_flight.load(Ordering::SeqCst) != 0
            || !core.pending.is_empty()
            || !core.health.output_ok()
        {
            return Err(message);
        }
        match message {
            Message::Position(scope, rv) => {
                core.position(scope, rv);
                Ok(())
            }
            // A rotation (its fsync) and a sync are for the writer thread.
            Message::Lines(batch) if core.sink.room().is_none_or(|r| batch.len() as u64 <= r) => {
                if let Err(e) = core.append(&batch) {
                    // Kept pending; the writer thread retries it with backoff.
                    core.failed(&e);
                    core.pending = batch;
                    drop(core);
                    // The channel is empty (nothing in flight): this cannot be full.
                    let _ = self.try_send(Message::Lines(Vec::new()));
                }
                Ok(())
            }
            other => Err(other),
        }
    }
}

impl Outlet for OutputHandle {
    fn send(&self, message: Message) -> impl Future<Output = Result<(), Closed>> + Send {
        OutputHandle::send(self, message)
    }
}

/// The writer thread: messages in order; a flush whenever it has caught up with the channel (or
/// has FLUSH_BYTES pending), so the file trails the stream by one batch at most.
fn run(shared: &Shared, mut rx: mpsc::Receiver<Message>) -> Result<WriterStats, OutputError> {
    loop {
        let message = match rx.try_recv() {
            Ok(message) => message,
            Err(mpsc::error::TryRecvError::Empty) => {
                // Caught up: put what we have in the file before waiting.
                shared.core().flush()?;
                match rx.blocking_recv() {
                    Some(message) => message,
                    None => break,
                }
            }
            Err(mpsc::error::TryRecvError::Disconnected) => break,
        };
        let mut core = shared.core();
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        core.take(message)?;
    }
    let mut core = shared.core();
    core.flush()?;
    core.sink.sync()?;
    Ok(core.stats)
}

impl Core {
    /// One message from the channel.
    fn take(&mut self, message: Message) -> Result<(), OutputError> {
        match message {
            Message::Lines(batch) if self.pending.is_empty() && batch.len() >= FLUSH_BYTES => {
                // Large enough on its own: written without a copy.
                self.pending = batch;
                self.flush()?;
            }
            Message::Lines(batch) => {
                self.pending.extend_from_slice(&batch);
                if self.pending.len() >= FLUSH_BYTES {
                    self.flush()?;
                }
            }
            Message::Covered(scope) if !self.progress.covers(&scope) => {
                self.flush()?;
                self.sink.sync()?;
                self.progress.covered(&scope);
            }
            Message::Covered(_) => {}
            Message::Position(scope, rv) => self.position(scope, rv),
        }
        Ok(())
    }

    /// The scope's write position: reported now if nothing is pending, else once it is written.
    fn position(&mut self, scope: Scope, rv: ResourceVersion) {
        if self.pending.is_empty() {
            self.progress.written(&scope, &rv);
        } else {
            self.positions.retain(|(s, _)| *s != scope);
            self.positions.push((scope, rv));
        }
    }

    /// One append, whole or not at all, counted.
    fn append(&mut self, lines: &[u8]) -> Result<(), OutputError> {
        self.sink.append(lines)?;
        self.metrics.output.bytes_written(lines.len() as u64);
        self.stats.bytes += lines.len() as u64;
        self.stats.writes += 1;
        Ok(())
    }

    fn failed(&mut self, e: &OutputError) {
        self.stats.failures += 1;
        self.metrics.output.write_error();
        self.health.set_output_ok(false);
        let _ = e;
    }

    /// Writes what is pending, cut at line boundaries to what each file takes, retrying with
    /// backoff while the sink fails (disk full, I/O errors). Gives up only at shutdown.
    fn flush(&mut self) -> Result<(), OutputError> {
        let pending = std::mem::take(&mut self.pending);
        let mut done = 0;
        while done < pending.len() {
            let rest = &pending[done..];
            let piece = self
                .sink
                .room()
                .map_or(rest.len(), |room| fitting(rest, room));
            match self.append(&rest[..piece]) {
                Ok(()) => done += piece,
                Err(e) => {
                    self.failed(&e);
                    if self.cancel.is_cancelled() {
                        tracing::error!(error = %e, bytes = pending.len() - done, "giving up at shutdown; these frames were read but not written and will be read again from the API at the next start");
                        self.pending = pending[done..].to_vec();
                        return Err(e);
                    }
                    let delay = self.retry.next_delay();
                    tracing::error!(error = %e, retry_in_ms = delay.as_millis() as u64, "cannot write the output; the watch waits until this write succeeds");
                    self.sleep(delay);
                }
            }
        }
        if !self.health.output_ok() {
            tracing::info!("the output is writable again");
            self.health.set_output_ok(true);
        }
        self.retry.reset();
        for (scope, rv) in std::mem::take(&mut self.positions) {
            self.progress.written(&scope, &rv);
        }
        // Keep the buffer for next time, not larger than it needs to be.
        let mut pending = pending;
        pending.clear();
        if pending.capacity() > FLUSH_BYTES * 4 {
            pending.shrink_to(FLUSH_BYTES * 2);
        }
        self.pending = pending;
        Ok(())
    }

    /// Sleeps, waking early on shutdown.
    fn sleep(&self, delay: Duration) {
        let until = Instant::now() + delay;
        while !self.cancel.is_cancelled() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }
}
