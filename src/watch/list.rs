//! How a LIST is done: every page fetched (the next while the current one is sorted), the
//! versions not yet written put in resourceVersion order in bounded memory
//! ([`external_sort`](super::external_sort)), then handed to the writer oldest first. Also the
//! stall check, which reads a LIST for its newest version only.

use std::cmp::Ordering;

use tokio_util::sync::CancellationToken;

use super::api::{ApiError, EventsApi};
use super::external_sort::{Sorter, SpillDir};
use super::machine::Outcome;
use super::{ScopeWatch, WatchError};
use crate::event::EventFrame;
use crate::frame::{
    Batch, DataKind, ListPage, ListedObject, Outlet, ResourceVersion, Scope, Write,
};
use crate::occurrence::Update;

/// List items sent to the writer per batch.
const LIST_BATCH_BYTES: usize = 256 * 1024;

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

impl<A: EventsApi, O: Outlet> ScopeWatch<A, O> {
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
    pub(super) async fn list(&mut self) -> Result<Outcome, WatchError> {
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
                // Every listed Event's count is the baseline its later frames count from.
                let update = Update::new(
                    obj.uid.as_deref(),
                    Some(obj.resource_version.as_str()),
                    obj.count,
                    Some(DataKind::Added),
                );
                self.occurrences.baseline(update);
                if obj.resource_version.compare(list_rv) == Some(Ordering::Greater) {
                    newer += 1;
                } else if !self.machine.already_written(&obj) && self.kept(&obj.line) {
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
        self.occurrences.listed();
        // The output covers the scope once this LIST is written (the checkpoint records it
        // the first time).
        self.ctx
            .out
            .send(Write::Covered(self.scope.clone()))
            .await
            .map_err(|_| WatchError::OutputClosed)?;
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
                .output
                .frames_written(DataKind::Added, filled.lines);
            self.machine.listed_up_to(last);
            self.send(batch, tokio::time::Instant::now()).await?;
        }
        if sorted.repeated > 0 {
            tracing::warn!(scope = %self.scope, items = sorted.repeated, "the LIST returned some items twice (the API server built its pages from live state); each was written once");
        }
        Ok(Ok(written))
    }

    /// A LIST could not be sorted on disk: counted as a write error, retried with backoff.
    fn unwritable(&self, e: std::io::Error) -> Outcome {
        self.ctx.metrics.output.write_error();
        Outcome::Unwritable(e.to_string())
    }

    /// Whether a LIST item passes the local filter.
    fn kept(&self, line: &[u8]) -> bool {
        self.ctx
            .keep
            .as_ref()
            .is_none_or(|keep| EventFrame::parse(line).is_ok_and(|f| keep(&f)))
    }

    /// Whether the API server holds an Event newer than anything this watch has seen: a LIST,
    /// read page by page for its newest version only (nothing written, one page in memory).
    pub(super) async fn server_is_ahead(&self) -> bool {
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
        newest.is_some_and(|n| n.is_unwritten(self.machine.newest()))
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
        resource_version: ResourceVersion::new(&rv),
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
