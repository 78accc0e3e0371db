//! The writer: what the watches send, in order, into the [`Sink`].
//!
//! One [`Core`] holds the sink and what is [`Pending`], behind a mutex. The writer thread takes
//! messages from a bounded channel and does everything slow: rotation (its `fsync`), retries
//! with backoff while writes fail (the lock released while it waits), and syncing when a scope
//! becomes covered. A watch that hands over a batch first tries [`OutputHandle::send`]'s inline
//! path: when nothing is queued or pending, the output is writing and the batch fits the file
//! without a rotation, it appends the batch itself, at once — an `append` to the page cache, no
//! hand-over to another thread and no second wake-up per event. Anything else, and a batch whose
//! inline append failed, goes through the channel, behind what is queued ([`Handoff`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::pending::Pending;
use super::{CHANNEL_BATCHES, FLUSH_BYTES, OutputError, Sink};
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
    /// The channel's senders are the handles' own: the writer thread ends once all are dropped.
    tx: mpsc::Sender<Message>,
    handoff: Arc<Handoff>,
}

/// How a message reaches the writer: appended inline by the sender, or queued through the
/// channel; it counts what is queued so that nothing inline overtakes it.
struct Handoff {
    core: Mutex<Core>,
    /// Messages queued and not yet taken in by the writer thread.
    queued: AtomicUsize,
    /// The writer thread has ended.
    closed: AtomicBool,
}

/// Whether the output takes writes: the writer's own state, published to `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Writing,
    /// A write failed; the writer thread retries it with backoff.
    Failing,
}

struct Core {
    sink: Box<dyn Sink>,
    state: State,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
    retry: Backoff,
    stats: WriterStats,
    progress: Box<dyn Progress>,
    pending: Pending,
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
    let handoff = Arc::new(Handoff {
        core: Mutex::new(Core {
            sink: Box::new(sink),
            state: State::Writing,
            health,
            metrics,
            cancel,
            retry,
            stats: WriterStats::default(),
            progress: Box::new(progress),
            pending: Pending::default(),
        }),
        queued: AtomicUsize::new(0),
        closed: AtomicBool::new(false),
    });
    let thread_handoff = handoff.clone();
    let handle = std::thread::Builder::new()
        .name("output-writer".into())
        .spawn(move || {
            let ended = run(&thread_handoff, rx);
            thread_handoff.closed.store(true, Ordering::SeqCst);
            ended
        })
        .expect("spawning the writer thread");
    (OutputHandle { tx, handoff }, handle)
}

impl Handoff {
    fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Nothing is queued and the writer thread runs: a message may go inline.
    fn idle(&self) -> bool {
        self.queued.load(Ordering::SeqCst) == 0 && !self.closed.load(Ordering::SeqCst)
    }

    async fn queue(&self, tx: &mpsc::Sender<Message>, message: Message) -> Result<(), Closed> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        tx.send(message).await.map_err(|_| {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            Closed
        })
    }

    /// [`queue`](Self::queue) from a thread outside the runtime (tests).
    #[cfg(test)]
    fn blocking_queue(&self, tx: &mpsc::Sender<Message>, message: Message) -> Result<(), Closed> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        tx.blocking_send(message).map_err(|_| {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            Closed
        })
    }

    /// [`queue`](Self::queue) without waiting: gives the message back when the channel is full
    /// (tests).
    #[cfg(test)]
    fn try_queue(
        &self,
        tx: &mpsc::Sender<Message>,
        message: Message,
    ) -> Result<(), mpsc::error::TrySendError<Message>> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        tx.try_send(message).inspect_err(|_| {
            self.queued.fetch_sub(1, Ordering::SeqCst);
        })
    }

    /// The writer thread took a queued message in (under the core's lock, so that no inline
    /// write passes it).
    fn taken(&self) {
        self.queued.fetch_sub(1, Ordering::SeqCst);
    }

    /// The inline path; gives the message back when it must be queued.
    fn try_inline(&self, message: Message) -> Result<(), Message> {
        if !self.idle() {
            return Err(message);
        }
        // The writer thread holds the lock while it works: then queue.
        let Ok(mut core) = self.core.try_lock() else {
            return Err(message);
        };
        // Checked again under the lock: nothing queued ahead, nothing pending, writing.
        if !self.idle() || !core.pending.is_empty() || core.state == State::Failing {
            return Err(message);
        }
        match message {
            Message::Position(scope, rv) => {
                core.position(scope, rv);
                Ok(())
            }
            // A rotation (its fsync) and a sync are for the writer thread.
            Message::Lines(batch) if core.sink.room().is_none_or(|r| batch.len() as u64 <= r) => {
                if core.append(&batch).is_ok() {
                    return Ok(());
                }
                // Nothing of it was written: queued, the writer thread retries it (and says why).
                core.failed();
                Err(Message::Lines(batch))
            }
            other => Err(other),
        }
    }
}

impl OutputHandle {
    /// Hands a message to the output, in order after everything this watch sent before: inline
    /// when it can be (see the module's doc), else through the channel (waiting while it is
    /// full).
    pub async fn send(&self, message: Message) -> Result<(), Closed> {
        match self.handoff.try_inline(message) {
            Ok(()) => Ok(()),
            Err(message) => self.handoff.queue(&self.tx, message).await,
        }
    }

    /// Through the channel only, from a thread outside the runtime (tests).
    #[cfg(test)]
    pub fn blocking_send(&self, message: Message) -> Result<(), Closed> {
        self.handoff.blocking_queue(&self.tx, message)
    }

    /// Through the channel only, without waiting (tests).
    #[cfg(test)]
    pub fn try_send(&self, message: Message) -> Result<(), mpsc::error::TrySendError<Message>> {
        self.handoff.try_queue(&self.tx, message)
    }
}

impl Outlet for OutputHandle {
    fn send(&self, message: Message) -> impl Future<Output = Result<(), Closed>> + Send {
        OutputHandle::send(self, message)
    }
}

/// The writer thread: messages in order; a flush whenever it has caught up with the channel (or
/// has FLUSH_BYTES pending), so the file trails the stream by one batch at most.
fn run(handoff: &Handoff, mut rx: mpsc::Receiver<Message>) -> Result<WriterStats, OutputError> {
    loop {
        let message = match rx.try_recv() {
            Ok(message) => message,
            Err(mpsc::error::TryRecvError::Empty) => {
                // Caught up: put what we have in the file before waiting.
                flush(handoff)?;
                match rx.blocking_recv() {
                    Some(message) => message,
                    None => break,
                }
            }
            Err(mpsc::error::TryRecvError::Disconnected) => break,
        };
        let mut core = handoff.core();
        handoff.taken();
        match message {
            Message::Lines(batch) => core.pending.add(batch),
            Message::Position(scope, rv) => core.position(scope, rv),
            Message::Covered(scope) if !core.progress.covers(&scope) => {
                drop(core);
                flush(handoff)?;
                let mut core = handoff.core();
                core.sink.sync()?;
                core.progress.covered(&scope);
                continue;
            }
            Message::Covered(_) => {}
        }
        if core.pending.len() >= FLUSH_BYTES {
            drop(core);
            flush(handoff)?;
        }
    }
    flush(handoff)?;
    let mut core = handoff.core();
    core.sink.sync()?;
    Ok(core.stats)
}

/// Writes what is pending, retrying with backoff while the sink fails (disk full, I/O errors),
/// the lock released while it waits. Gives up only at shutdown.
fn flush(handoff: &Handoff) -> Result<(), OutputError> {
    loop {
        let mut core = handoff.core();
        let Err(e) = core.write_pending() else {
            return Ok(());
        };
        core.failed();
        if core.cancel.is_cancelled() {
            tracing::error!(error = %e, bytes = core.pending.len(), "giving up at shutdown; these frames were read but not written and will be read again from the API at the next start");
            return Err(e);
        }
        let delay = core.retry.next_delay();
        tracing::error!(error = %e, retry_in_ms = delay.as_millis() as u64, "cannot write the output; the watch waits until this write succeeds");
        let cancel = core.cancel.clone();
        drop(core);
        sleep(delay, &cancel);
    }
}

/// Sleeps, waking early on shutdown.
fn sleep(delay: Duration, cancel: &CancellationToken) {
    let until = Instant::now() + delay;
    while !cancel.is_cancelled() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

impl Core {
    /// The scope's write position: reported now if nothing is pending, else once it is written.
    fn position(&mut self, scope: Scope, rv: ResourceVersion) {
        if let Some((scope, rv)) = self.pending.position(scope, rv) {
            self.progress.written(&scope, &rv);
        }
    }

    /// One append, whole or not at all, counted.
    fn append(&mut self, lines: &[u8]) -> Result<(), OutputError> {
        self.sink.append(lines)?;
        self.count_write(lines.len());
        Ok(())
    }

    /// One append of `n` bytes went through.
    fn count_write(&mut self, n: usize) {
        self.metrics.output.bytes_written(n as u64);
        self.stats.bytes += n as u64;
        self.stats.writes += 1;
    }

    fn failed(&mut self) {
        self.stats.failures += 1;
        self.metrics.output.write_error();
        self.set_state(State::Failing);
    }

    fn set_state(&mut self, state: State) {
        if self.state != state {
            self.state = state;
            self.health.set_output_ok(state == State::Writing);
        }
    }

    /// Writes what is pending, cut at line boundaries to what each file takes; the positions
    /// that waited for it are reported once it is all written.
    fn write_pending(&mut self) -> Result<(), OutputError> {
        while !self.pending.is_empty() {
            let room = self.sink.room();
            let piece = self.pending.next_piece(room);
            let n = piece.len();
            self.sink.append(piece)?;
            self.count_write(n);
            for (scope, rv) in self.pending.written(n) {
                self.progress.written(&scope, &rv);
            }
        }
        if self.state == State::Failing {
            tracing::info!("the output is writable again");
            self.set_state(State::Writing);
        }
        self.retry.reset();
        Ok(())
    }
}
