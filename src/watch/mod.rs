//! Watching one scope: LIST then WATCH over the API server's raw byte stream, reconnecting,
//! backing off and relisting so that every object version reaches the writer once, in
//! resourceVersion order.
//!
//! - [`machine`]: decides, purely, what each attempt's end means and what comes next.
//! - [`list`]: how a LIST is done (pages, order, hand-over to the writer).
//! - [`stream`]: how the watch stream is read (chunks → lines → batches).
//! - [`external_sort`]: a LIST in resourceVersion order in bounded memory (runs spilled to
//!   disk, k-way merge); it knows nothing of HTTP.
//! - [`lines`]: a chunk → whole lines; [`api`]: the requests, behind the [`EventsApi`] trait.
//!
//! [`ScopeWatch::run`] performs the requests the machine asks for, reports what each attempt
//! ended with (and the newest version its frames carried), and logs each transition in one place.

mod api;
mod external_sort;
mod lines;
mod list;
mod machine;
mod stream;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use api::{ApiError, EventsApi, KubeApi};
pub use external_sort::SpillDir;
pub use list::ListSorting;
use machine::{Machine, Outcome, Reason, Request, Said, Step, Wait};

use crate::backoff::Backoff;
use crate::event::EventFrame;
use crate::frame::{Batch, DataKind, Outlet, ResourceVersion, Scope, Write};
use crate::health::Health;
use crate::metrics::{Counters, Metrics};
use crate::occurrence::{History, Occurrences};

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
pub struct Shared<A, O> {
    pub api: Arc<A>,
    /// Where the lines go.
    pub out: O,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    pub cancel: CancellationToken,
    /// Writes only the data frames this accepts (the local part of `--filter`).
    pub keep: Option<Keep>,
    /// No frame for this long while the API server has newer events: the watch is stalled.
    pub stall_timeout: Duration,
    pub lists: Arc<ListSorting>,
    /// Events whose last count each scope remembers for counting occurrences.
    pub occurrence_events: usize,
}

impl<A, O: Clone> Clone for Shared<A, O> {
    fn clone(&self) -> Self {
        Self {
            api: self.api.clone(),
            out: self.out.clone(),
            health: self.health.clone(),
            metrics: self.metrics.clone(),
            cancel: self.cancel.clone(),
            keep: self.keep.clone(),
            stall_timeout: self.stall_timeout,
            lists: self.lists.clone(),
            occurrence_events: self.occurrence_events,
        }
    }
}

/// Where a scope starts, from the output (and the previous leader's position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// The output covers the scope up to this version: the watch resumes after it.
    After(ResourceVersion),
    /// The scope is listed. `marks`: the newest version of each namespace already in the output
    /// (empty when it holds none); this LIST and later ones write nothing at or below them.
    List {
        marks: BTreeMap<String, ResourceVersion>,
    },
}

/// A failed attempt that will be retried: how many in a row, and the wait before the next.
#[derive(Debug, Clone, Copy)]
struct Retry {
    attempt: u32,
    in_: Duration,
}

/// Watches one scope until shutdown or a fatal refusal: performs the requests its [`Machine`]
/// asks for and tells what each attempt ended with.
pub struct ScopeWatch<A, O> {
    scope: Scope,
    ctx: Shared<A, O>,
    /// Where the scope stands: its position, what was written, its marks.
    machine: Machine,
    /// The scope's Events' last counts: what each frame written adds to the occurrence metric.
    occurrences: Occurrences,
    /// This watch's handles on the occurrence counters.
    counters: Counters,
    /// When the event-time lag was last measured (it costs a parse, so at most once a second).
    lag_measured: Option<Instant>,
}

impl<A: EventsApi, O: Outlet> ScopeWatch<A, O> {
    pub fn new(scope: Scope, ctx: Shared<A, O>, start: Start) -> Self {
        // Resumed where an earlier run stopped, the Events' earlier counts are unknown: no
        // burst from them (see `occurrence::History`). After a LIST they are its baseline.
        let history = match start {
            Start::After(_) => History::Resumed,
            Start::List { .. } => History::Known,
        };
        Self {
            scope,
            occurrences: Occurrences::with_history(ctx.occurrence_events, history),
            counters: Counters::default(),
            ctx,
            machine: Machine::new(start),
            lag_measured: None,
        }
    }

    /// Runs until shutdown (`Ok`) or a refusal that retrying will not mend.
    pub async fn run(mut self) -> Result<(), WatchError> {
        let (mut request, mut reason) = self.machine.first();
        match &request {
            Request::Watch(rv) => {
                tracing::info!(scope = %self.scope, resource_version = %rv, "resuming the watch after the last frame written for this scope (by this replica, or by the previous leader)")
            }
            Request::List => {
                tracing::info!(scope = %self.scope, "no earlier output; listing current events")
            }
        }
        let mut backoff = Backoff::default();
        let mut attempts = 0u32;
        loop {
            match reason {
                Reason::Watch(why) => self.ctx.metrics.watch.started(why),
                Reason::List(why) => self.ctx.metrics.watch.relisted(why),
            }
            let outcome = match &request {
                Request::List => self.list().await?,
                Request::Watch(rv) => self.watch(rv.clone()).await?,
            };
            let (step, said) = self.machine.step(&outcome);
            // The delay before the next request, and how many attempts in a row have waited.
            let delay = match &step {
                Step::Next {
                    wait, progressed, ..
                } => {
                    if *progressed {
                        backoff.reset();
                        attempts = 0;
                    }
                    match wait {
                        Wait::None => None,
                        Wait::Backoff => Some(backoff.next_delay()),
                        Wait::RetryAfter(d) => Some(backoff.after_server_hint(*d)),
                    }
                }
                Step::Stop | Step::Fatal(_) => None,
            };
            if delay.is_some() {
                attempts += 1;
            }
            let retry = delay.map(|d| Retry {
                attempt: attempts,
                in_: d,
            });
            self.report(&outcome, said, retry);
            match step {
                Step::Stop => return Ok(()),
                Step::Fatal(e) => return Err(WatchError::refused(self.scope, e)),
                Step::Next {
                    request: next,
                    reason: why,
                    ..
                } => (request, reason) = (next, why),
            }
            let Some(delay) = delay else { continue };
            tracing::debug!(scope = %self.scope, delay_ms = delay.as_millis() as u64, "waiting before the next request");
            tokio::select! {
                _ = self.ctx.cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// The one place a transition is logged and shown in health and metrics, as the machine
    /// said; `outcome` supplies the details.
    fn report(&self, outcome: &Outcome, said: Said, retry: Option<Retry>) {
        let scope = &self.scope;
        // Each retried failure is one line, with the attempt and the wait before the next one.
        let (attempt, retry_in) = retry.map_or((0, String::new()), |r| {
            (r.attempt, format!("{:.1}s", r.in_.as_secs_f64()))
        });
        if outcome.breaks_watch() {
            self.ctx.health.set_watching(scope, false);
        }
        let error = match outcome {
            Outcome::Failed(e) => e.to_string(),
            Outcome::Broken(why) | Outcome::Unwritable(why) => why.clone(),
            _ => String::new(),
        };
        match said {
            Said::Nothing => {}
            Said::Resuming => tracing::debug!(%scope, "the server ended the watch; resuming"),
            Said::NoProgress => {
                tracing::warn!(%scope, "the watch makes no progress; treating the position as lost and listing again")
            }
            Said::Refused => {
                tracing::warn!(%scope, error, attempt, retry_in, "the API server refuses us; retrying with backoff (check credentials and RBAC: get, list, watch on events)")
            }
            Said::ContinueExpired => {
                tracing::warn!(%scope, "the list continue token expired (410); listing again from the start")
            }
            Said::Throttled => {
                tracing::warn!(%scope, error, attempt, retry_in, "the API server is throttling us (429); retrying when it said")
            }
            Said::RequestFailed => {
                tracing::warn!(%scope, error, attempt, retry_in, "request failed; retrying with backoff")
            }
            Said::Broken => {
                tracing::warn!(%scope, reason = %error, attempt, retry_in, "the watch stream broke; reconnecting from the last whole frame");
            }
            Said::Stalled => {
                self.ctx.metrics.watch.stalled();
                tracing::warn!(%scope, stall_timeout_s = self.ctx.stall_timeout.as_secs(), "the watch delivered nothing while the API server has newer events; not ready, listing again");
            }
            Said::Unwritable => {
                tracing::error!(%scope, error, "sorting the LIST on disk failed (disk full or the output directory not writable?); not ready, listing again with backoff");
            }
            Said::Expired => {
                tracing::warn!(%scope, "the watch position expired (410); listing again, writing only versions not yet written");
            }
            Said::ErrorFrame => {
                if let Outcome::ErrorFrame(status) = outcome {
                    tracing::warn!(%scope, code = status.code, reason = %status.reason, message = %status.message, "ERROR frame in the watch stream; reconnecting");
                }
            }
        }
    }

    /// Records that a batch was written and, at most once a second, the event time of its newest
    /// occurrence (a parse the hot path should not pay for every batch). `now` is the caller's
    /// reading of the clock for this batch: none is taken here.
    fn note_batch(&mut self, batch: &[u8], now: Instant) {
        if self
            .lag_measured
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1))
        {
            self.ctx.metrics.output.batch_written(None);
            return;
        }
        self.lag_measured = Some(now);
        self.ctx
            .metrics
            .output
            .batch_written(newest_occurrence_ms(batch));
    }

    /// Sends a batch read at about `now`.
    async fn send(&mut self, batch: Batch, now: Instant) -> Result<(), WatchError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.note_batch(&batch, now);
        self.counters.flush(&self.ctx.metrics);
        self.ctx
            .out
            .send(Write::Lines(batch))
            .await
            .map_err(|_| WatchError::OutputClosed)?;
        if let Some(rv) = self.machine.written() {
            let position = Write::Position(self.scope.clone(), rv.clone());
            self.ctx
                .out
                .send(position)
                .await
                .map_err(|_| WatchError::OutputClosed)?;
        }
        Ok(())
    }
}

/// The event time (Unix ms) of a batch's newest occurrence: its last frame that is not DELETED.
/// A DELETED frame repeats an Event's last state when the Event expires, about an hour after its
/// last occurrence; its time says nothing about how far behind the watch is.
fn newest_occurrence_ms(batch: &[u8]) -> Option<i64> {
    batch
        .split(|c| *c == b'\n')
        .rev()
        .filter(|l| !l.is_empty())
        .filter_map(|l| EventFrame::parse(l).ok())
        .find(|f| f.kind() != Some(DataKind::Deleted))
        .and_then(|f| f.object.time()?.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Frame, Status};
    use bytes::Bytes;
    use http_body_util::channel::{Channel, Sender};
    use std::collections::VecDeque;
    use std::sync::Mutex;

    fn rv(s: &str) -> ResourceVersion {
        ResourceVersion::new(s)
    }

    /// What the watch sends, as the tests read it: a plain channel.
    impl Outlet for tokio::sync::mpsc::Sender<Write> {
        async fn send(&self, message: Write) -> Result<(), crate::frame::Closed> {
            tokio::sync::mpsc::Sender::send(self, message)
                .await
                .map_err(|_| crate::frame::Closed)
        }
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
            self.list_page(list_rv, item_rvs, None);
        }

        /// One LIST page; `next` is its continue token.
        fn list_page(&self, list_rv: u64, item_rvs: &[u64], next: Option<&str>) {
            let items: Vec<String> = item_rvs
                .iter()
                .map(|v| format!(r#"{{"metadata":{{"namespace":"a","resourceVersion":"{v}"}}}}"#))
                .collect();
            let token = next.map_or(String::new(), |t| format!(r#","continue":"{t}""#));
            let body = format!(
                r#"{{"metadata":{{"resourceVersion":"{list_rv}"{token}}},"items":[{}]}}"#,
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
        tokio::sync::mpsc::Receiver<Write>,
        CancellationToken,
    ) {
        let (out, rx) = tokio::sync::mpsc::channel(64);
        let cancel = CancellationToken::new();
        let ctx = Shared {
            api: api.clone(),
            out,
            health: Arc::new(Health::new(&[Scope::All])),
            metrics: Arc::new(Metrics::new()),
            cancel: cancel.clone(),
            keep: None,
            stall_timeout,
            occurrence_events: 1000,
            lists: Arc::new(ListSorting::new(
                SpillDir::new(std::env::temp_dir(), ".kube-event-logger-test.list-".into()),
                1 << 20,
            )),
        };
        let start = Start::After(rv(position));
        let task = tokio::spawn(ScopeWatch::new(Scope::All, ctx, start).run());
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
    async fn a_watch_the_server_never_ends_is_taken_as_dead_after_its_timeout() {
        // A dead connection on a quiet cluster: no bytes, no end, and the server has nothing
        // newer. No per-read timeout exists; the stall checks see the watch overdue.
        let api = Arc::new(Scripted::default());
        api.silent_watch();
        api.silent_watch();
        let start = Instant::now();
        let stall = Duration::from_secs(60);
        let reconnected = drive(api.clone(), "5", stall, |calls| {
            calls.iter().filter(|(c, _)| c.starts_with("watch")).count() >= 2
        });
        tokio::time::timeout(Duration::from_secs(7200), reconnected)
            .await
            .expect("the dead watch was never left");
        let calls = api.calls();
        let watches: Vec<_> = calls
            .iter()
            .filter(|(c, _)| c.starts_with("watch"))
            .collect();
        assert_eq!(watches[1].0, "watch from 5", "it resumes where it was");
        let after = watches[1].1 - start;
        // timeoutSeconds is in [300, 600); overdue 60 s later, seen at the next stall check.
        assert!(
            after >= Duration::from_secs(360),
            "not before it is overdue: {after:?}"
        );
        assert!(
            after <= Duration::from_secs(600 + 60 + 60 + 30),
            "{after:?}"
        );
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
    async fn an_item_a_list_repeats_on_two_pages_is_written_once() {
        // Pages built from live state: item 5 ends page one and starts page two.
        let api = Arc::new(Scripted::default());
        api.failing_watch(410, None);
        api.list_page(6, &[4, 5], Some("p2"));
        api.list_page(6, &[5, 6], None);
        api.silent_watch();
        let (task, mut rx, cancel) = spawn_scope(&api, "2", Duration::from_secs(3600));
        let mut versions = Vec::new();
        while let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await
        {
            if let Write::Lines(batch) = message {
                for line in String::from_utf8(batch).unwrap().lines() {
                    let Frame::Data {
                        resource_version, ..
                    } = Frame::parse(line.as_bytes()).unwrap()
                    else {
                        panic!("{line}")
                    };
                    versions.push(resource_version.as_str().to_owned());
                }
            }
        }
        cancel.cancel();
        task.await.unwrap().unwrap();
        assert_eq!(versions, ["4", "5", "6"]);
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
    async fn under_throttling_each_retry_waits_the_retry_after_and_no_longer() {
        // API Priority and Fairness: six 429s with Retry-After: 2, then the server lets us in
        // and later fails once with a plain 503.
        let api = Arc::new(Scripted::default());
        for _ in 0..6 {
            api.failing_watch(429, Some(Duration::from_secs(2)));
        }
        api.failing_watch(503, None);
        api.silent_watch();
        drive(api.clone(), "5", Duration::from_secs(3600), |c| {
            c.len() >= 8
        })
        .await;
        let calls = api.calls();
        let gaps: Vec<Duration> = calls.windows(2).map(|w| w[1].1 - w[0].1).collect();
        for (i, gap) in gaps.iter().take(6).enumerate() {
            assert!(
                *gap >= Duration::from_secs(2) && *gap <= Duration::from_millis(2100),
                "retry {i} after a 429 waited {gap:?}, the server said 2s"
            );
        }
        // The throttling did not grow the backoff: the 503 after it waits the initial delay.
        assert!(gaps[6] <= Duration::from_millis(250), "{:?}", gaps[6]);
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

    #[test]
    fn the_lag_is_read_from_the_newest_occurrence_not_from_a_deleted_frame() {
        let frame = |kind: &str, time: &str| {
            format!(
                r#"{{"type":"{kind}","object":{{"metadata":{{"resourceVersion":"1"}},"lastTimestamp":"{time}"}}}}"#
            ) + "\n"
        };
        let ms = |t: &str| t.parse::<jiff::Timestamp>().unwrap().as_millisecond();
        let batch = frame("ADDED", "2026-11-29T10:00:00Z")
            + &frame("MODIFIED", "2026-11-29T10:05:00Z")
            + &frame("DELETED", "2026-11-29T09:00:00Z");
        assert_eq!(
            newest_occurrence_ms(batch.as_bytes()),
            Some(ms("2026-11-29T10:05:00Z"))
        );
        let expiring = frame("DELETED", "2026-11-29T09:00:00Z");
        assert_eq!(newest_occurrence_ms(expiring.as_bytes()), None);
        assert_eq!(newest_occurrence_ms(b"not json\n"), None);
    }
}
