//! Watching one scope: LIST then WATCH over the API server's raw byte stream, reconnecting,
//! backing off and relisting so that every object version reaches the writer once, in
//! resourceVersion order.
//!
//! [`machine`] decides, purely, what each attempt's end means; [`ScopeWatch`] only performs the
//! requests it asks for, against an [`EventsApi`], and reports each transition in one place.

mod api;
mod lines;
mod machine;
mod sorted;

use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use api::{ApiError, EventsApi, KubeApi};
use lines::{Line, LineSplitter};
use machine::{Machine, Outcome, Reason, Request, Step, Wait};
use sorted::Sorter;
pub use sorted::SpillDir;

use crate::backoff::Backoff;
use crate::event::EventFrame;
use crate::frame::{Batch, DataKind, Frame, ListPage, ListedObject, ResourceVersion, Scope, Write};
use crate::health::Health;
use crate::metrics::{Metrics, Relist};
use std::cmp::Ordering;

/// Longest frame line accepted; longer ones are treated as a broken stream.
const MAX_LINE: usize = 16 * 1024 * 1024;
/// Watch duration asked of the server: random in [MIN, 2×MIN), as client-go's reflector does.
const WATCH_TIMEOUT_MIN: Duration = Duration::from_secs(300);
/// List items sent to the writer per batch.
const LIST_BATCH_BYTES: usize = 256 * 1024;
/// Watch bytes gathered into one batch while the connection has more ready.
const BURST_BYTES: usize = 256 * 1024;
/// How long a small batch waits for the next chunk before it goes to the writer.
const LINGER: Duration = Duration::from_millis(2);
/// Batches smaller than this linger.
const LINGER_BELOW: usize = 32 * 1024;
/// A batch's first frame waits at most about this long (plus one LINGER) for the rest.
const GATHER_AT_MOST: Duration = Duration::from_millis(10);

/// Why a watch body stopped giving chunks.
enum ChunkEnd {
    /// The server ended the stream cleanly.
    Stream,
    Outcome(Outcome),
}

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

/// Decides whether a data frame is written (the local part of `--filter`).
pub type Keep = Arc<dyn Fn(&EventFrame<'_>) -> bool + Send + Sync>;

/// Why a scope stopped for good.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(
        "the API server rejected our credentials for {scope} (401 Unauthorized): {message}. \
         Check the service-account token or the kubeconfig user"
    )]
    Unauthorized { scope: Scope, message: String },
    #[error(
        "the API server forbids reading events for {scope} (403 Forbidden): {message}. \
         Grant the RBAC rule: apiGroups [\"\"], resources [\"events\"], verbs [get, list, watch] \
         (a ClusterRole for all namespaces, or a Role in each --namespace); see deploy/"
    )]
    Forbidden { scope: Scope, message: String },
    #[error("the API server refused the request for {scope}: {source}")]
    Refused {
        scope: Scope,
        #[source]
        source: ApiError,
    },
    #[error("the output writer has stopped")]
    OutputClosed,
}

impl WatchError {
    fn refused(scope: Scope, e: ApiError) -> Self {
        let message = e.message();
        match e.code() {
            Some(401) => WatchError::Unauthorized { scope, message },
            Some(403) => WatchError::Forbidden { scope, message },
            _ => WatchError::Refused { scope, source: e },
        }
    }
}

/// What the watches of every scope share.
pub struct Shared<A> {
    pub api: Arc<A>,
    pub tx: mpsc::Sender<Write>,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    pub cancel: CancellationToken,
    /// Writes only the data frames this accepts (the local part of `--filter`).
    pub keep: Option<Keep>,
    /// No frame for this long while the API server has newer events: the watch is stalled.
    pub stall_timeout: Duration,
    pub lists: Arc<ListSorting>,
}

/// How LISTs are put in order: the memory for one sort run, where full runs spill, and one
/// LIST at a time in the process, so memory does not grow with the number of scopes either.
pub struct ListSorting {
    spill: SpillDir,
    budget: usize,
    turn: tokio::sync::Semaphore,
}

impl ListSorting {
    pub fn new(spill: SpillDir, budget: usize) -> Self {
        Self {
            spill,
            budget,
            turn: tokio::sync::Semaphore::new(1),
        }
    }
}

/// One LIST page: its items, the resourceVersion it was served at, the next page's token.
struct Page {
    items: Vec<ListedObject>,
    resource_version: ResourceVersion,
    next: Option<String>,
}

impl<A> Clone for Shared<A> {
    fn clone(&self) -> Self {
        Self {
            api: self.api.clone(),
            tx: self.tx.clone(),
            health: self.health.clone(),
            metrics: self.metrics.clone(),
            cancel: self.cancel.clone(),
            keep: self.keep.clone(),
            stall_timeout: self.stall_timeout,
            lists: self.lists.clone(),
        }
    }
}

/// Where a scope starts, from the output.
#[derive(Debug, Default)]
pub struct Resume {
    /// The newest version written for the scope, when the output covers it: the watch resumes
    /// there. `None`: the scope is listed.
    pub written: Option<ResourceVersion>,
    /// Whether the output covers the scope; if not, its first LIST makes it so.
    pub covered: bool,
    /// For a scope the output does not cover yet: the newest version of each namespace already
    /// in the output. A LIST writes nothing at or below these.
    pub marks: std::collections::BTreeMap<String, ResourceVersion>,
}

/// Watches one scope until shutdown or a fatal refusal.
pub struct ScopeWatch<A> {
    scope: Scope,
    ctx: Shared<A>,
    machine: Machine,
    /// The newest version handed to the writer for this scope.
    written: Option<ResourceVersion>,
    /// See [`Resume::marks`]; kept for the scope's later LISTs (a relist after 410).
    marks: std::collections::BTreeMap<String, ResourceVersion>,
    /// Whether the output covers this scope (else its first LIST makes it so).
    covered: bool,
    /// When the event-time lag was last measured (it costs a parse, so at most once a second).
    lag_measured: Option<Instant>,
}

impl<A: EventsApi> ScopeWatch<A> {
    pub fn new(scope: Scope, ctx: Shared<A>, resume: Resume) -> Self {
        Self {
            scope,
            ctx,
            machine: Machine::new(resume.written.clone()),
            covered: resume.covered,
            written: resume.written,
            marks: resume.marks,
            lag_measured: None,
        }
    }

    /// Whether a listed object is already in the output.
    fn already_written(&self, obj: &ListedObject) -> bool {
        let mark = obj.namespace.as_ref().and_then(|ns| self.marks.get(ns));
        !obj.resource_version.is_unwritten(self.written.as_ref())
            || mark.is_some_and(|m| !obj.resource_version.is_unwritten(Some(m)))
    }

    pub async fn run(mut self) -> Result<(), WatchError> {
        let (mut request, mut reason) = self.machine.first();
        match &request {
            Request::Watch(rv) => {
                tracing::info!(scope = %self.scope, resource_version = %rv, "resuming after the last frame in the output")
            }
            Request::List => {
                tracing::info!(scope = %self.scope, "no earlier output; listing current events")
            }
        }
        let mut backoff = Backoff::default();
        loop {
            match reason {
                Reason::Watch(why) => self.ctx.metrics.watch_started(why),
                Reason::List(why) => self.ctx.metrics.relisted(why),
            }
            let outcome = match &request {
                Request::List => self.list().await?,
                Request::Watch(rv) => self.watch(rv.clone()).await?,
            };
            let step = self.machine.step(&outcome);
            self.report(&outcome, &step);
            let wait = match step {
                Step::Stop => return Ok(()),
                Step::Fatal => {
                    let Outcome::Failed(e) = outcome else {
                        unreachable!("only a failed request is fatal")
                    };
                    return Err(WatchError::refused(self.scope, e));
                }
                Step::Next {
                    request: next,
                    wait,
                    reason: why,
                    progressed,
                } => {
                    if progressed {
                        backoff.reset();
                    }
                    (request, reason) = (next, why);
                    wait
                }
            };
            let delay = match wait {
                Wait::None => continue,
                Wait::Backoff => backoff.next_delay(),
                Wait::RetryAfter(d) => backoff.after_server_hint(d),
            };
            tracing::debug!(scope = %self.scope, delay_ms = delay.as_millis() as u64, "waiting before the next request");
            tokio::select! {
                _ = self.ctx.cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// The one place a transition is logged and shown in health and metrics.
    fn report(&self, outcome: &Outcome, step: &Step) {
        let scope = &self.scope;
        if outcome.breaks_watch() {
            self.ctx.health.set_watching(scope, false);
        }
        match outcome {
            Outcome::Listed(_) | Outcome::Cancelled => {}
            Outcome::Failed(_) if *step == Step::Fatal => {}
            Outcome::Failed(e) => match e.code() {
                Some(401 | 403) => {
                    tracing::warn!(%scope, error = %e, "the API server refuses us; retrying with backoff (check credentials and RBAC: get, list, watch on events)")
                }
                Some(410) => {
                    tracing::warn!(%scope, "the list continue token expired (410); listing again from the start")
                }
                _ => tracing::warn!(%scope, error = %e, "request failed; retrying with backoff"),
            },
            Outcome::Closed { .. } => {
                if matches!(
                    step,
                    Step::Next {
                        reason: Reason::List(Relist::NoProgress),
                        ..
                    }
                ) {
                    tracing::warn!(%scope, "the watch makes no progress; treating the position as lost and listing again");
                } else {
                    tracing::debug!(%scope, "the server ended the watch; resuming");
                }
            }
            Outcome::Broken(why) => {
                tracing::warn!(%scope, reason = %why, "the watch stream broke; reconnecting from the last whole frame");
            }
            Outcome::Stalled => {
                self.ctx.metrics.stalled();
                tracing::warn!(%scope, stall_timeout_s = self.ctx.stall_timeout.as_secs(), "the watch delivered nothing while the API server has newer events; not ready, listing again");
            }
            Outcome::Unwritable(e) => {
                tracing::error!(%scope, error = %e, "sorting the LIST on disk failed (disk full or the output directory not writable?); not ready, listing again with backoff");
            }
            Outcome::Expired => {
                tracing::warn!(%scope, "the watch position expired (410); listing again, writing only versions not yet written");
            }
            Outcome::ErrorFrame(status) => {
                tracing::warn!(%scope, code = status.code, reason = %status.reason, message = %status.message, "ERROR frame in the watch stream; reconnecting");
            }
        }
    }

    /// Fetches and parses one LIST page on a task of its own (aborted if dropped unawaited).
    fn fetch_page(&self, token: Option<&str>) -> AbortOnDrop<Result<Page, Outcome>> {
        let (api, scope, cancel) = (
            self.ctx.api.clone(),
            self.scope.clone(),
            self.ctx.cancel.clone(),
        );
        let token = token.map(str::to_owned);
        AbortOnDrop(tokio::spawn(async move {
            page(&*api, &scope, token.as_deref(), &cancel).await
        }))
    }

    /// LISTs every page, then writes the versions not yet written, oldest first. Memory is one
    /// page plus the sort budget: a larger LIST is sorted in runs on disk.
    ///
    /// The list's resourceVersion is its first page's: a real API server serves every page at
    /// that snapshot. An item newer than it can only come from a server that does not; it is
    /// left to the watch from the list's resourceVersion, which delivers it in order, so the
    /// output never holds a version the watch has not covered yet.
    async fn list(&mut self) -> Result<Outcome, WatchError> {
        let lists = self.ctx.lists.clone();
        let _turn = tokio::select! {
            _ = self.ctx.cancel.cancelled() => return Ok(Outcome::Cancelled),
            turn = lists.turn.acquire() => turn,
        };
        let mut sorter = Sorter::new(lists.spill.clone(), lists.budget);
        let (mut list_rv, mut listed, mut newer) = (None, 0u64, 0u64);
        let mut next = Some(self.fetch_page(None));
        while let Some(fetching) = next.take() {
            let page = match fetching.await {
                Ok(Ok(page)) => page,
                Ok(Err(outcome)) => return Ok(outcome),
                Err(e) => return Ok(Outcome::Failed(ApiError::Body(e.to_string()))),
            };
            // The next page is fetched and parsed while this one is sorted: two pages in
            // memory at most.
            next = page.next.as_deref().map(|t| self.fetch_page(Some(t)));
            let list_rv: &ResourceVersion = list_rv.get_or_insert(page.resource_version);
            for obj in page.items {
                listed += 1;
                if obj.resource_version.compare(list_rv) == Some(Ordering::Greater) {
                    newer += 1;
                } else if !self.already_written(&obj) && self.kept(&obj.line) {
                    sorter.push(&obj.resource_version, &obj.line);
                }
            }
            if sorter.is_full() {
                sorter = match blocking(move || sorter.spill().map(|()| sorter)).await {
                    Ok(sorter) => sorter,
                    Err(e) => return Ok(self.unwritable(e)),
                };
            }
        }
        let list_rv = list_rv.expect("a LIST has a first page");
        self.machine.started();
        if newer > 0 {
            tracing::warn!(scope = %self.scope, items = newer, resource_version = %list_rv, "the LIST held items newer than its resourceVersion (the API server did not serve every page at one snapshot); the watch from that version delivers them, in order");
        }
        let written = match self.write_sorted(sorter).await? {
            Ok(written) => written,
            Err(e) => return Ok(self.unwritable(e)),
        };
        if self.ctx.cancel.is_cancelled() {
            // Cut short: the scope is not covered to the list's end.
            return Ok(Outcome::Cancelled);
        }
        tracing::info!(scope = %self.scope, listed, written, resource_version = %list_rv, "listed events");
        if !self.covered {
            self.covered = true;
            self.ctx
                .tx
                .send(Write::Covered(self.scope.clone()))
                .await
                .map_err(|_| WatchError::OutputClosed)?;
        }
        Ok(Outcome::Listed(list_rv))
    }

    /// Sends a sorted LIST to the writer, oldest first; how many lines.
    async fn write_sorted(&mut self, sorter: Sorter) -> Result<std::io::Result<u64>, WatchError> {
        let mut sorted = match blocking(move || sorter.finish()).await {
            Ok(sorted) => sorted,
            Err(e) => return Ok(Err(e)),
        };
        let mut written = 0;
        // On shutdown the rest is left: the output holds a prefix, oldest first, which the
        // next start resumes after.
        while !self.ctx.cancel.is_cancelled() {
            // Allocated here, not on the blocking thread: the writer frees it, and memory that
            // moves between fewer threads' allocator arenas is returned sooner.
            let mut batch = Batch::with_capacity(LIST_BATCH_BYTES + 64 * 1024);
            let filled = blocking(move || {
                let filled = sorted.fill(&mut batch, LIST_BATCH_BYTES)?;
                Ok((sorted, batch, filled))
            })
            .await;
            let (back, batch, filled) = match filled {
                Ok(filled) => filled,
                Err(e) => return Ok(Err(e)),
            };
            sorted = back;
            let Some(last) = filled.last else {
                break;
            };
            written += filled.lines;
            self.ctx
                .metrics
                .frames_written(DataKind::Added, filled.lines);
            self.written = Some(last);
            self.send(batch).await?;
        }
        Ok(Ok(written))
    }

    /// A LIST could not be sorted on disk: counted as a write error, retried with backoff.
    fn unwritable(&self, e: std::io::Error) -> Outcome {
        self.ctx.metrics.write_error();
        Outcome::Unwritable(e.to_string())
    }

    /// Whether a LIST item passes the local filter.
    fn kept(&self, line: &[u8]) -> bool {
        self.ctx
            .keep
            .as_ref()
            .is_none_or(|keep| EventFrame::parse(line).is_ok_and(|f| keep(&f)))
    }

    /// One WATCH connection, until it ends.
    async fn watch(&mut self, from: ResourceVersion) -> Result<Outcome, WatchError> {
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
        self.machine.started();
        self.ctx.health.set_watching(&self.scope, true);
        tracing::debug!(scope = %self.scope, resource_version = %from, "watching");
        let mut splitter = LineSplitter::new(MAX_LINE);
        let mut quiet_since = Instant::now();
        loop {
            let chunk = tokio::select! {
                biased;
                _ = self.ctx.cancel.cancelled() => return Ok(Outcome::Cancelled),
                f = body.frame() => f,
                _ = tokio::time::sleep_until(quiet_since + self.ctx.stall_timeout) => {
                    if self.server_is_ahead().await {
                        return Ok(Outcome::Stalled);
                    }
                    quiet_since = Instant::now();
                    continue;
                }
            };
            quiet_since = Instant::now();
            // Everything the connection already holds goes into one batch: per burst, not per
            // chunk (the API server flushes every event on its own when it is not busy).
            let mut batch = Batch::new();
            let gathering = Instant::now();
            let mut next = Some(chunk);
            let mut ended = Ok(());
            while let Some(chunk) = next.take() {
                ended = self.take_chunk(chunk, &mut splitter, &mut batch);
                if ended.is_err() || batch.len() >= BURST_BYTES {
                    break;
                }
                next = match ready_now(&mut body).await {
                    Some(chunk) => Some(chunk),
                    // A small batch waits a moment for the next chunk rather than pay a write
                    // per frame (a burst of one-frame chunks). A lone frame is late by LINGER
                    // at most; a large batch goes at once.
                    None if batch.len() < LINGER_BELOW && gathering.elapsed() < GATHER_AT_MOST => {
                        tokio::time::timeout(LINGER, body.frame()).await.ok()
                    }
                    None => None,
                };
            }
            self.send(batch).await?;
            if let Err(end) = ended {
                return Ok(match end {
                    ChunkEnd::Stream => Outcome::Closed {
                        ran_its_course: opened.elapsed() >= timeout / 2,
                    },
                    ChunkEnd::Outcome(outcome) => outcome,
                });
            }
        }
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
        let bytes = data.copy_to_bytes(data.remaining());
        splitter
            .push(&bytes, |line| self.take_line(line, batch))
            .map_err(ChunkEnd::Outcome)
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
        let malformed = |e: crate::frame::FrameError| {
            let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(120)]).into_owned();
            Outcome::Broken(format!("malformed line ({e}): {shown}"))
        };
        // With a filter, the frame and the Event view come from one parse and the view is
        // judged at once; without, the line is read only as far as its resourceVersion.
        let (frame, kept) = match &self.ctx.keep {
            Some(keep) => {
                let (frame, view) = EventFrame::parse_frame(bytes).map_err(malformed)?;
                (frame, view.is_none_or(|v| keep(&v)))
            }
            None => (Frame::parse_head(bytes).map_err(malformed)?, true),
        };
        let (kind, rv) = match frame {
            Frame::Error(status) if status.is_expired() => return Err(Outcome::Expired),
            Frame::Error(status) => return Err(Outcome::ErrorFrame(status)),
            Frame::Bookmark(rv) => {
                self.machine.saw(rv);
                return Ok(());
            }
            Frame::Data {
                kind,
                resource_version,
                ..
            } => (kind, resource_version),
        };
        self.machine.saw(rv.clone());
        if !rv.is_unwritten(self.written.as_ref()) {
            tracing::debug!(scope = %self.scope, resource_version = %rv, "skipping a frame already written");
            return Ok(());
        }
        if !kept {
            return Ok(());
        }
        batch.extend_from_slice(bytes);
        batch.push(b'\n');
        self.written = Some(rv);
        self.ctx.metrics.frames_written(kind, 1);
        Ok(())
    }

    /// Records that a batch was written and, at most once a second, the event time of its last
    /// frame (a parse the hot path should not pay for every batch).
    fn note_batch(&mut self, batch: &[u8]) {
        if self
            .lag_measured
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            self.ctx.metrics.batch_written(None);
            return;
        }
        self.lag_measured = Some(Instant::now());
        let last = batch
            .strip_suffix(b"\n")
            .and_then(|b| b.rsplit(|c| *c == b'\n').next());
        let time = last.and_then(|l| EventFrame::parse(l).ok()).and_then(|f| {
            f.object
                .time()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        });
        self.ctx
            .metrics
            .batch_written(time.map(|t| t.as_millisecond()));
    }

    /// Whether the API server holds an Event newer than anything this watch has seen: a LIST,
    /// read page by page for its newest version only (nothing written, one page in memory).
    async fn server_is_ahead(&self) -> bool {
        let _turn = self.ctx.lists.turn.acquire().await;
        let mut token = None;
        let mut newest: Option<ResourceVersion> = None;
        loop {
            let fetched = page(
                &*self.ctx.api,
                &self.scope,
                token.as_deref(),
                &self.ctx.cancel,
            );
            let Ok(page) = fetched.await else {
                return false;
            };
            for obj in page.items {
                newest = Some(match newest {
                    Some(n) => n.newest(obj.resource_version),
                    None => obj.resource_version,
                });
            }
            match page.next {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        newest.is_some_and(|n| n.is_unwritten(self.machine.position()))
    }

    async fn send(&mut self, batch: Batch) -> Result<(), WatchError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.note_batch(&batch);
        self.ctx
            .tx
            .send(Write::Lines(batch))
            .await
            .map_err(|_| WatchError::OutputClosed)?;
        if let Some(rv) = &self.written {
            let position = Write::Position(self.scope.clone(), rv.clone());
            self.ctx
                .tx
                .send(position)
                .await
                .map_err(|_| WatchError::OutputClosed)?;
        }
        Ok(())
    }
}

/// One page of a LIST, parsed; items that are not Events are skipped with a warning.
async fn page<A: EventsApi>(
    api: &A,
    scope: &Scope,
    token: Option<&str>,
    cancel: &CancellationToken,
) -> Result<Page, Outcome> {
    let body = tokio::select! {
        _ = cancel.cancelled() => return Err(Outcome::Cancelled),
        r = api.list_page(scope, token) => r,
    };
    let body = body.map_err(Outcome::Failed)?;
    let page =
        ListPage::parse(&body).map_err(|e| Outcome::Failed(ApiError::Decode(e.to_string())))?;
    let mut items = Vec::with_capacity(page.items.len());
    for item in page.items {
        match ListedObject::from_item(item) {
            Ok(obj) => items.push(obj),
            Err(e) => {
                tracing::warn!(%scope, error = %e, "skipping a LIST item that is not an Event")
            }
        }
    }
    let Some(rv) = page.metadata.resource_version.filter(|rv| !rv.is_empty()) else {
        return Err(Outcome::Failed(ApiError::Decode(
            "no metadata.resourceVersion".into(),
        )));
    };
    Ok(Page {
        items,
        resource_version: ResourceVersion::new(rv.into_owned()),
        next: page
            .metadata
            .continue_token
            .filter(|t| !t.is_empty())
            .map(Into::into),
    })
}

/// A spawned task that is aborted when its handle is dropped (a LIST abandoned half-way).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Status;
    use bytes::Bytes;
    use http_body_util::channel::{Channel, Sender};
    use std::collections::VecDeque;
    use std::sync::Mutex;

    fn rv(s: &str) -> ResourceVersion {
        ResourceVersion::new(s.into())
    }

    /// An [`EventsApi`] that answers from a script and records when each call came.
    #[derive(Default)]
    struct Scripted {
        lists: Mutex<VecDeque<Result<Bytes, ApiError>>>,
        watches: Mutex<VecDeque<Result<Channel<Bytes, String>, ApiError>>>,
        /// ("list" | "watch from RV", when), in call order.
        calls: Mutex<Vec<(String, Instant)>>,
        /// Senders of open watch bodies, kept so the bodies stay open.
        open: Mutex<Vec<Sender<Bytes, String>>>,
    }

    impl Scripted {
        fn list(&self, list_rv: u64, item_rvs: &[u64]) {
            let items: Vec<String> = item_rvs
                .iter()
                .map(|v| format!(r#"{{"metadata":{{"namespace":"a","resourceVersion":"{v}"}}}}"#))
                .collect();
            let body = format!(
                r#"{{"metadata":{{"resourceVersion":"{list_rv}"}},"items":[{}]}}"#,
                items.join(",")
            );
            self.lists.lock().unwrap().push_back(Ok(body.into()));
        }

        /// A watch that stays open and sends nothing.
        fn silent_watch(&self) {
            let (tx, body) = Channel::new(1);
            self.open.lock().unwrap().push(tx);
            self.watches.lock().unwrap().push_back(Ok(body));
        }

        fn failing_watch(&self, code: u16, retry_after: Option<Duration>) {
            self.watches
                .lock()
                .unwrap()
                .push_back(Err(ApiError::Status {
                    code,
                    retry_after,
                    status: Status::default(),
                }));
        }

        fn calls(&self) -> Vec<(String, Instant)> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl EventsApi for Scripted {
        type Body = Channel<Bytes, String>;

        async fn list_page(&self, _: &Scope, _: Option<&str>) -> Result<Bytes, ApiError> {
            self.calls
                .lock()
                .unwrap()
                .push(("list".into(), Instant::now()));
            let next = self.lists.lock().unwrap().pop_front();
            next.unwrap_or_else(|| Err(ApiError::Body("script ended".into())))
        }

        async fn watch(
            &self,
            _: &Scope,
            from: &ResourceVersion,
            _: Duration,
        ) -> Result<Self::Body, ApiError> {
            let call = format!("watch from {from}");
            self.calls.lock().unwrap().push((call, Instant::now()));
            let next = self.watches.lock().unwrap().pop_front();
            match next {
                Some(w) => w,
                // The script ended: hang until cancelled.
                None => std::future::pending().await,
            }
        }
    }

    /// One scope's loop, spawned, resuming after `position`: its task, what it sends the
    /// writer, and the token that stops it.
    fn spawn_scope(
        api: &Arc<Scripted>,
        position: &str,
        stall_timeout: Duration,
    ) -> (
        tokio::task::JoinHandle<Result<(), WatchError>>,
        mpsc::Receiver<Write>,
        CancellationToken,
    ) {
        let (tx, rx) = mpsc::channel(64);
        let cancel = CancellationToken::new();
        let ctx = Shared {
            api: api.clone(),
            tx,
            health: Arc::new(Health::new(&[Scope::All])),
            metrics: Arc::new(Metrics::new()),
            cancel: cancel.clone(),
            keep: None,
            stall_timeout,
            lists: Arc::new(ListSorting::new(
                SpillDir::new(std::env::temp_dir(), ".kube-event-logger-test.list-".into()),
                1 << 20,
            )),
        };
        let resume = Resume {
            written: Some(rv(position)),
            covered: true,
            ..Resume::default()
        };
        let task = tokio::spawn(ScopeWatch::new(Scope::All, ctx, resume).run());
        (task, rx, cancel)
    }

    /// Runs one scope's loop from `position` until `until` holds for the calls so far.
    async fn drive(
        api: Arc<Scripted>,
        position: &str,
        stall_timeout: Duration,
        until: impl Fn(&[(String, Instant)]) -> bool,
    ) -> Vec<u8> {
        let (task, mut rx, cancel) = spawn_scope(&api, position, stall_timeout);
        while !until(&api.calls()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        cancel.cancel();
        task.await.unwrap().unwrap();
        let mut written = Vec::new();
        while let Ok(message) = rx.try_recv() {
            if let Write::Lines(batch) = message {
                written.extend_from_slice(&batch);
            }
        }
        written
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_watch_relists_only_once_the_server_is_ahead() {
        let api = Arc::new(Scripted::default());
        let timeout = Duration::from_secs(60);
        api.silent_watch();
        api.list(5, &[4, 5]); // first stall check: nothing newer, keep watching
        api.list(9, &[5, 9]); // second: the server has 9, the watch missed it
        api.list(9, &[5, 9]); // the relist
        api.silent_watch();
        let start = Instant::now();
        let written = drive(api.clone(), "5", timeout, |calls| calls.len() >= 5).await;
        let calls = api.calls();
        let names: Vec<&str> = calls.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(
            names,
            ["watch from 5", "list", "list", "list", "watch from 9"]
        );
        let at = |i: usize| calls[i].1 - start;
        assert_eq!(at(1), timeout, "first check after one quiet stall timeout");
        assert_eq!(at(2), 2 * timeout, "a quiet cluster is not a stall");
        assert!(at(3) > at(2), "the relist backs off");
        let text = String::from_utf8(written).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains(r#""resourceVersion":"9""#), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_list_item_newer_than_the_lists_version_is_left_to_the_watch() {
        // A server that built a later page from live state: item 9 is newer than the list's
        // version 5. Writing it would put 9 in the output before the watch covered 6..8.
        let api = Arc::new(Scripted::default());
        api.failing_watch(410, None);
        api.list(5, &[4, 9, 3]);
        let (mut sender, body) = Channel::<Bytes, String>::new(8);
        api.watches.lock().unwrap().push_back(Ok(body));
        let (task, mut rx, cancel) = spawn_scope(&api, "2", Duration::from_secs(3600));
        for v in [7, 9] {
            let line = format!(
                r#"{{"type":"MODIFIED","object":{{"metadata":{{"namespace":"a","resourceVersion":"{v}"}}}}}}"#
            ) + "\n";
            sender.send_data(Bytes::from(line)).await.unwrap();
        }
        let mut versions = Vec::new();
        // Until nothing more comes for a minute (paused time: at once).
        while let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await
        {
            if let Write::Lines(batch) = message {
                for line in String::from_utf8(batch).unwrap().lines() {
                    let frame = Frame::parse(line.as_bytes()).unwrap();
                    let Frame::Data {
                        resource_version, ..
                    } = frame
                    else {
                        panic!("{line}")
                    };
                    versions.push(resource_version.as_str().to_owned());
                }
            }
        }
        cancel.cancel();
        task.await.unwrap().unwrap();
        assert_eq!(versions, ["3", "4", "7", "9"]);
        let calls: Vec<String> = api.calls().into_iter().map(|(c, _)| c).collect();
        assert_eq!(calls, ["watch from 2", "list", "watch from 5"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_of_frames_is_batched_but_never_held_long() {
        let api = Arc::new(Scripted::default());
        let (mut sender, body) = Channel::<Bytes, String>::new(256);
        api.watches.lock().unwrap().push_back(Ok(body));
        let (task, mut rx, cancel) = spawn_scope(&api, "5", Duration::from_secs(3600));
        // Small frames, 1 ms apart: each would let a batch linger again.
        let sent_at: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let sent = sent_at.clone();
        tokio::spawn(async move {
            for v in 6..206u64 {
                let line = format!(
                    r#"{{"type":"ADDED","object":{{"metadata":{{"namespace":"a","resourceVersion":"{v}"}}}}}}"#
                ) + "\n";
                sent.lock().unwrap().push(Instant::now());
                if sender.send_data(Bytes::from(line)).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        let mut batches = Vec::new();
        let mut frames = 0;
        while frames < 200 {
            let Some(Write::Lines(batch)) = rx.recv().await else {
                continue;
            };
            let first = frames;
            frames += batch
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count();
            batches.push((first, Instant::now()));
        }
        cancel.cancel();
        task.await.unwrap().unwrap();
        assert!(
            batches.len() < 50,
            "batched: {} batches for 200 frames",
            batches.len()
        );
        // Each batch left at most 10 ms (gathering) + 2 ms (one linger) + 1 ms (timer
        // granularity) after its first frame was sent.
        let sent_at = sent_at.lock().unwrap();
        for (first, written) in batches {
            let held = written - sent_at[first];
            assert!(
                held <= Duration::from_millis(13),
                "frame {first} was held {held:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_exponentially_and_retry_after_is_honoured() {
        let api = Arc::new(Scripted::default());
        for _ in 0..4 {
            api.failing_watch(503, None);
        }
        api.failing_watch(429, Some(Duration::from_secs(7)));
        api.silent_watch();
        drive(api.clone(), "5", Duration::from_secs(3600), |c| {
            c.len() >= 6
        })
        .await;
        let calls = api.calls();
        let gaps: Vec<Duration> = calls.windows(2).map(|w| w[1].1 - w[0].1).collect();
        for (i, gap) in gaps.iter().take(4).enumerate() {
            let ceiling = Duration::from_millis(250 << i);
            assert!(
                *gap >= ceiling / 2 && *gap <= ceiling,
                "retry {i} after {gap:?}, expected within {:?}..={ceiling:?}",
                ceiling / 2
            );
        }
        assert!(
            gaps[4] >= Duration::from_secs(7),
            "Retry-After: {:?}",
            gaps[4]
        );
        assert!(calls.iter().all(|(c, _)| c == "watch from 5"), "{calls:?}");
    }
}
