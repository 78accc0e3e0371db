//! Watching one scope: LIST then WATCH over kube's raw byte stream, reconnecting, backing off and
//! relisting so that every object version reaches the writer once, in resourceVersion order.
//!
//! The loop is a small state machine. [`Next`] says what to do; an attempt ends in an
//! [`Outcome`]; the pure [`decide`] turns the outcome into the next step and a delay.

mod api;
mod lines;

use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
pub use api::{Api, ApiError};
use lines::{Line, LineSplitter};

use crate::event::EventFrame;
use crate::frame::{Frame, FrameType, ListPage, ListedObject, Status};
use crate::health::Health;
use crate::metrics::{Metrics, Relist, WatchStart};
use crate::output::Batch;
use crate::position::{ResourceVersion, Scope};

/// Longest frame line accepted; longer ones are treated as a broken stream.
const MAX_LINE: usize = 16 * 1024 * 1024;
/// Watches that end quickly without a frame, in a row, before the position is taken as lost.
const STALL_LIMIT: u32 = 3;
/// Watch duration asked of the server: random in [MIN, 2×MIN), as client-go's reflector does.
const WATCH_TIMEOUT_MIN: Duration = Duration::from_secs(300);
/// List items sent to the writer per batch.
const LIST_BATCH_BYTES: usize = 256 * 1024;

/// Decides whether a data frame line is written (the local part of `--filter`).
pub type Keep = Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

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

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    List,
    Watch(ResourceVersion),
}

/// How one LIST or WATCH attempt ended.
#[derive(Debug)]
pub enum Outcome {
    /// A LIST completed; watch from its resourceVersion.
    Listed(ResourceVersion),
    /// The server ended the watch cleanly.
    Closed,
    /// The connection broke (mid-frame, reset, malformed line).
    Broken(String),
    /// ERROR frame or HTTP 410: the position is gone.
    Expired,
    /// No frame for the stall timeout while the API server has newer events.
    Stalled,
    /// An ERROR frame with another Status.
    ErrorFrame(Status),
    /// The request failed before streaming.
    Failed(ApiError),
    /// Shutdown was requested.
    Cancelled,
}

/// What the outcome means for the loop.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Go { next: Next, wait: Wait },
    Stop,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Wait {
    None,
    Backoff,
    RetryAfter(Duration),
}

/// Per-scope facts [`decide`] needs.
#[derive(Debug, Default)]
pub struct Progress {
    /// Where a resumed watch starts: the newest version seen (written, listed or bookmarked).
    pub position: Option<ResourceVersion>,
    /// Whether this attempt delivered a frame or ran its course.
    pub progressed: bool,
    /// Quick, empty watch ends in a row.
    pub stalls: u32,
}

/// The pure heart of the loop: from an outcome to the next step.
pub fn decide(outcome: &Outcome, p: &mut Progress) -> Step {
    let resume = |p: &Progress| match &p.position {
        Some(rv) => Next::Watch(rv.clone()),
        None => Next::List,
    };
    if p.progressed {
        p.stalls = 0;
    }
    match outcome {
        Outcome::Cancelled => Step::Stop,
        Outcome::Listed(rv) => {
            p.position = Some(rv.clone());
            Step::Go {
                next: Next::Watch(rv.clone()),
                wait: Wait::None,
            }
        }
        Outcome::Closed if p.progressed => Step::Go {
            next: resume(p),
            wait: Wait::None,
        },
        Outcome::Closed => {
            p.stalls += 1;
            let next = if p.stalls >= STALL_LIMIT {
                p.stalls = 0;
                Next::List
            } else {
                resume(p)
            };
            Step::Go {
                next,
                wait: Wait::Backoff,
            }
        }
        Outcome::Stalled => Step::Go {
            next: Next::List,
            wait: Wait::Backoff,
        },
        Outcome::Expired => Step::Go {
            next: Next::List,
            wait: if p.progressed {
                Wait::None
            } else {
                Wait::Backoff
            },
        },
        Outcome::Broken(_) | Outcome::ErrorFrame(_) => Step::Go {
            next: resume(p),
            wait: Wait::Backoff,
        },
        Outcome::Failed(e) if e.is_expired() => Step::Go {
            next: Next::List,
            wait: Wait::Backoff,
        },
        Outcome::Failed(e) => Step::Go {
            next: resume(p),
            wait: e.retry_after().map_or(Wait::Backoff, Wait::RetryAfter),
        },
    }
}

/// What the watches of every scope share.
#[derive(Clone)]
pub struct Shared {
    pub api: Arc<Api>,
    pub tx: mpsc::Sender<Batch>,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    pub cancel: CancellationToken,
    /// Writes only the data frames this accepts (the local part of `--filter`).
    pub keep: Option<Keep>,
    /// No frame for this long while the API server has newer events: the watch is stalled.
    pub stall_timeout: Duration,
}

/// Watches one scope until shutdown or a fatal refusal.
pub struct ScopeWatch {
    scope: Scope,
    ctx: Shared,
    /// The newest version handed to the writer for this scope.
    written: Option<ResourceVersion>,
    /// Whether any request for this scope has succeeded (refusals before that are fatal).
    started: bool,
    /// When the event-time lag was last measured (it costs a parse, so at most once a second).
    lag_measured: Option<Instant>,
}

impl ScopeWatch {
    pub fn new(scope: Scope, ctx: Shared, written: Option<ResourceVersion>) -> Self {
        Self {
            scope,
            ctx,
            written,
            started: false,
            lag_measured: None,
        }
    }

    fn kept(&self, line: &[u8]) -> bool {
        self.ctx.keep.as_ref().is_none_or(|keep| keep(line))
    }

    pub async fn run(mut self) -> Result<(), WatchError> {
        let mut progress = Progress {
            position: self.written.clone(),
            ..Progress::default()
        };
        let mut next = match &self.written {
            Some(rv) => {
                tracing::info!(scope = %self.scope, resource_version = %rv, "resuming after the last frame in the output");
                Next::Watch(rv.clone())
            }
            None => {
                tracing::info!(scope = %self.scope, "no earlier output; listing current events");
                Next::List
            }
        };
        let mut backoff = Backoff::default();
        let mut last: Option<Outcome> = None;
        loop {
            progress.progressed = false;
            match &next {
                Next::List => self.ctx.metrics.relisted(relist_reason(last.as_ref())),
                Next::Watch(_) => self.ctx.metrics.watch_started(start_reason(last.as_ref())),
            }
            let outcome = match &next {
                Next::List => self.list(&mut progress).await?,
                Next::Watch(rv) => self.watch(rv.clone(), &mut progress).await?,
            };
            let outcome = self.report(outcome)?;
            if progress.progressed {
                backoff.reset();
            }
            let step = decide(&outcome, &mut progress);
            let Step::Go { next: n, wait } = step else {
                return Ok(());
            };
            if n == Next::List && matches!(outcome, Outcome::Closed) {
                tracing::warn!(scope = %self.scope, "the watch makes no progress; treating the position as lost and listing again");
            }
            next = n;
            last = Some(outcome);
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

    /// Logs an outcome; a refusal before anything succeeded ends the scope.
    fn report(&mut self, outcome: Outcome) -> Result<Outcome, WatchError> {
        let scope = &self.scope;
        if let Outcome::Failed(e) = outcome {
            if !self.started && e.is_refusal() {
                let (scope, message) = (scope.clone(), e.message());
                return Err(match e.code() {
                    Some(401) => WatchError::Unauthorized { scope, message },
                    Some(403) => WatchError::Forbidden { scope, message },
                    _ => WatchError::Refused { scope, source: e },
                });
            }
            self.ctx.health.set_watching(scope, false);
            match e.code() {
                Some(401 | 403) => {
                    tracing::error!(%scope, error = %e, "the API server refuses us; retrying with backoff (check credentials and RBAC: get, list, watch on events)")
                }
                Some(410) => {
                    tracing::warn!(%scope, "the list continue token expired (410); listing again from the start")
                }
                _ => tracing::warn!(%scope, error = %e, "request failed; retrying with backoff"),
            }
            return Ok(Outcome::Failed(e));
        }
        match &outcome {
            Outcome::Listed(_) | Outcome::Cancelled | Outcome::Failed(_) => {}
            Outcome::Closed => tracing::debug!(%scope, "the server ended the watch; resuming"),
            Outcome::Broken(why) => {
                self.ctx.health.set_watching(scope, false);
                tracing::warn!(%scope, reason = %why, "the watch stream broke; reconnecting from the last whole frame");
            }
            Outcome::Stalled => {
                self.ctx.health.set_watching(scope, false);
                self.ctx.metrics.stalled();
                tracing::warn!(%scope, stall_timeout_s = self.ctx.stall_timeout.as_secs(), "the watch delivered nothing while the API server has newer events; not ready, listing again");
            }
            Outcome::Expired => {
                tracing::warn!(%scope, "the watch position expired (410); listing again, writing only versions not yet written");
            }
            Outcome::ErrorFrame(status) => {
                self.ctx.health.set_watching(scope, false);
                tracing::warn!(%scope, code = status.code, reason = %status.reason, message = %status.message, "ERROR frame in the watch stream; reconnecting");
            }
        }
        Ok(outcome)
    }

    /// Every page of a LIST: the objects and the list's resourceVersion.
    async fn list_all(&self) -> Result<(Vec<ListedObject>, ResourceVersion), Outcome> {
        let mut items: Vec<ListedObject> = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let body = tokio::select! {
                _ = self.ctx.cancel.cancelled() => return Err(Outcome::Cancelled),
                r = self.ctx.api.list_page(&self.scope, token.as_deref()) => r,
            };
            let body = body.map_err(Outcome::Failed)?;
            let page = ListPage::parse(&body)
                .map_err(|e| Outcome::Failed(ApiError::Decode(e.to_string())))?;
            for item in page.items {
                match ListedObject::from_item(item) {
                    Ok(obj) => items.push(obj),
                    Err(e) => {
                        tracing::warn!(scope = %self.scope, error = %e, "skipping a LIST item that is not an Event")
                    }
                }
            }
            token = page
                .metadata
                .continue_token
                .filter(|t| !t.is_empty())
                .map(Into::into);
            if token.is_none() {
                return match page.metadata.resource_version.filter(|rv| !rv.is_empty()) {
                    Some(rv) => Ok((items, ResourceVersion::new(rv.into_owned()))),
                    None => Err(Outcome::Failed(ApiError::Decode(
                        "no metadata.resourceVersion".into(),
                    ))),
                };
            }
        }
    }

    /// LISTs every page, then writes the versions not yet written, oldest first.
    async fn list(&mut self, progress: &mut Progress) -> Result<Outcome, WatchError> {
        let (mut items, list_rv) = match self.list_all().await {
            Ok(listed) => listed,
            Err(outcome) => return Ok(outcome),
        };
        self.started = true;
        sort_by_version(&mut items);
        let total = items.len();
        let mut written = 0usize;
        let mut batch = Batch::new();
        for obj in items {
            if !obj.resource_version.is_unwritten(self.written.as_ref()) || !self.kept(&obj.line) {
                continue;
            }
            batch.extend_from_slice(&obj.line);
            batch.push(b'\n');
            written += 1;
            self.ctx.metrics.frames_written(FrameType::Added, 1);
            self.written = Some(obj.resource_version);
            if batch.len() >= LIST_BATCH_BYTES {
                self.send(std::mem::take(&mut batch)).await?;
            }
        }
        self.send(batch).await?;
        progress.progressed = true;
        tracing::info!(scope = %self.scope, listed = total, written, resource_version = %list_rv, "listed events");
        Ok(Outcome::Listed(list_rv))
    }

    /// One WATCH connection, until it ends.
    async fn watch(
        &mut self,
        from: ResourceVersion,
        progress: &mut Progress,
    ) -> Result<Outcome, WatchError> {
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
        self.started = true;
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
                    if self.server_is_ahead(progress).await {
                        return Ok(Outcome::Stalled);
                    }
                    quiet_since = Instant::now();
                    continue;
                }
            };
            quiet_since = Instant::now();
            let data = match chunk {
                None if splitter.pending() > 0 => {
                    return Ok(Outcome::Broken(format!(
                        "the stream ended inside a frame ({} bytes)",
                        splitter.pending()
                    )));
                }
                None => {
                    if opened.elapsed() >= timeout / 2 {
                        progress.progressed = true;
                    }
                    return Ok(Outcome::Closed);
                }
                Some(Err(e)) => return Ok(Outcome::Broken(e.to_string())),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => data,
                    Err(_) => continue,
                },
            };
            let mut batch = Batch::new();
            let ended = splitter.push(&data, |line| self.take_line(line, &mut batch, progress));
            self.send(batch).await?;
            if let Err(outcome) = ended {
                return Ok(outcome);
            }
        }
    }

    /// Handles one line of the watch stream: data frames go into the batch, anything that ends
    /// the watch comes back as its outcome.
    fn take_line(
        &mut self,
        line: Line<'_>,
        batch: &mut Batch,
        progress: &mut Progress,
    ) -> Result<(), Outcome> {
        let bytes = match line {
            Line::Complete([]) => return Ok(()),
            Line::Complete(b) => b,
            Line::TooLong(n) => {
                return Err(Outcome::Broken(format!(
                    "a line of {n} bytes exceeds the {MAX_LINE}-byte limit"
                )));
            }
        };
        let frame = Frame::parse(bytes).map_err(|e| {
            let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(120)]).into_owned();
            Outcome::Broken(format!("malformed line ({e}): {shown}"))
        })?;
        match frame.kind {
            FrameType::Error => {
                let status = frame.status.unwrap_or_default();
                Err(if status.is_expired() {
                    Outcome::Expired
                } else {
                    Outcome::ErrorFrame(status)
                })
            }
            FrameType::Bookmark => {
                progress.progressed = true;
                progress.position = frame.resource_version;
                Ok(())
            }
            _ => {
                progress.progressed = true;
                let rv = frame
                    .resource_version
                    .expect("data frames carry a resourceVersion");
                progress.position = Some(rv.clone());
                if !rv.is_unwritten(self.written.as_ref()) {
                    tracing::debug!(scope = %self.scope, resource_version = %rv, "skipping a frame already written");
                    return Ok(());
                }
                if !self.kept(bytes) {
                    return Ok(());
                }
                batch.extend_from_slice(bytes);
                batch.push(b'\n');
                self.written = Some(rv);
                self.ctx.metrics.frames_written(frame.kind, 1);
                Ok(())
            }
        }
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

    /// Whether the API server holds an Event newer than anything this watch has seen: a LIST
    /// (not written) compared with the position.
    async fn server_is_ahead(&self, progress: &Progress) -> bool {
        let Ok((items, _)) = self.list_all().await else {
            return false;
        };
        let newest = items
            .into_iter()
            .map(|o| o.resource_version)
            .reduce(ResourceVersion::newest);
        newest.is_some_and(|n| n.is_unwritten(progress.position.as_ref()))
    }

    async fn send(&mut self, batch: Batch) -> Result<(), WatchError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.note_batch(&batch);
        self.ctx
            .tx
            .send(batch)
            .await
            .map_err(|_| WatchError::OutputClosed)
    }
}

fn start_reason(last: Option<&Outcome>) -> WatchStart {
    match last {
        None => WatchStart::Start,
        Some(Outcome::Listed(_)) => WatchStart::AfterList,
        Some(Outcome::Closed) => WatchStart::ServerClosed,
        Some(Outcome::ErrorFrame(_)) => WatchStart::ErrorFrame,
        Some(Outcome::Failed(_)) => WatchStart::RequestFailed,
        Some(_) => WatchStart::Broken,
    }
}

fn relist_reason(last: Option<&Outcome>) -> Relist {
    match last {
        None => Relist::Initial,
        Some(Outcome::Stalled) => Relist::Stalled,
        Some(Outcome::Closed) => Relist::NoProgress,
        Some(Outcome::Expired) | Some(Outcome::Failed(ApiError::Status { code: 410, .. })) => {
            Relist::Expired
        }
        Some(_) => Relist::Retry,
    }
}

/// Oldest first, so that the output stays in resourceVersion order and its last line is always a
/// valid place to resume. Numeric versions sort numerically; others keep their LIST order after.
fn sort_by_version(items: &mut [ListedObject]) {
    items.sort_by_cached_key(|o| {
        o.resource_version
            .as_str()
            .parse::<u64>()
            .unwrap_or(u64::MAX)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rv(s: &str) -> ResourceVersion {
        ResourceVersion::new(s.into())
    }

    fn at(pos: &str) -> Progress {
        Progress {
            position: Some(rv(pos)),
            ..Progress::default()
        }
    }

    fn go(next: Next, wait: Wait) -> Step {
        Step::Go { next, wait }
    }

    #[test]
    fn a_list_leads_to_a_watch_from_its_version() {
        let mut p = Progress::default();
        assert_eq!(
            decide(&Outcome::Listed(rv("9")), &mut p),
            go(Next::Watch(rv("9")), Wait::None)
        );
        assert_eq!(p.position, Some(rv("9")));
    }

    #[test]
    fn clean_ends_resume_at_once_and_broken_ones_back_off() {
        let mut p = at("5");
        p.progressed = true;
        assert_eq!(
            decide(&Outcome::Closed, &mut p),
            go(Next::Watch(rv("5")), Wait::None)
        );
        assert_eq!(
            decide(&Outcome::Broken("x".into()), &mut p),
            go(Next::Watch(rv("5")), Wait::Backoff)
        );
        let s = Status {
            code: 500,
            ..Status::default()
        };
        assert_eq!(
            decide(&Outcome::ErrorFrame(s), &mut p),
            go(Next::Watch(rv("5")), Wait::Backoff)
        );
    }

    #[test]
    fn quick_empty_watches_in_a_row_mean_relist() {
        let mut p = at("5");
        assert_eq!(
            decide(&Outcome::Closed, &mut p),
            go(Next::Watch(rv("5")), Wait::Backoff)
        );
        assert_eq!(
            decide(&Outcome::Closed, &mut p),
            go(Next::Watch(rv("5")), Wait::Backoff)
        );
        assert_eq!(
            decide(&Outcome::Closed, &mut p),
            go(Next::List, Wait::Backoff)
        );
        assert_eq!(p.stalls, 0);
        // Progress in between clears the count.
        decide(&Outcome::Closed, &mut p);
        p.progressed = true;
        decide(&Outcome::Broken("x".into()), &mut p);
        p.progressed = false;
        decide(&Outcome::Closed, &mut p);
        assert_eq!(
            decide(&Outcome::Closed, &mut p),
            go(Next::Watch(rv("5")), Wait::Backoff)
        );
    }

    #[test]
    fn expiry_relists() {
        let mut p = at("5");
        assert_eq!(
            decide(&Outcome::Expired, &mut p),
            go(Next::List, Wait::Backoff)
        );
        p.progressed = true;
        assert_eq!(
            decide(&Outcome::Expired, &mut p),
            go(Next::List, Wait::None)
        );
        let gone = ApiError::Status {
            code: 410,
            retry_after: None,
            status: Status::default(),
        };
        assert_eq!(
            decide(&Outcome::Failed(gone), &mut p),
            go(Next::List, Wait::Backoff)
        );
    }

    #[test]
    fn retry_after_is_honoured_and_cancel_stops() {
        let mut p = Progress::default();
        let throttled = ApiError::Status {
            code: 429,
            retry_after: Some(Duration::from_secs(2)),
            status: Status::default(),
        };
        assert_eq!(
            decide(&Outcome::Failed(throttled), &mut p),
            go(Next::List, Wait::RetryAfter(Duration::from_secs(2)))
        );
        assert_eq!(decide(&Outcome::Cancelled, &mut p), Step::Stop);
    }

    #[test]
    fn list_items_sort_oldest_first() {
        let obj = |v: &str| ListedObject {
            resource_version: rv(v),
            line: v.as_bytes().to_vec(),
        };
        let mut items = vec![obj("30"), obj("x"), obj("4"), obj("100")];
        sort_by_version(&mut items);
        let order: Vec<&str> = items.iter().map(|o| o.resource_version.as_str()).collect();
        assert_eq!(order, ["4", "30", "100", "x"]);
    }
}
