//! `run`: the one place where the parts are wired together.
//!
//! Start-up recovers the position from the output, opens it, loads cluster access and binds the
//! HTTP endpoint; then one watch task per scope feeds the writer thread. Shutdown cancels the
//! watches (stop reading), lets the writer drain the channel (write what was read), syncs and
//! returns.

use std::sync::Arc;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::checkpoint::Checkpoint;
use crate::cluster::{self, ClusterError};
use crate::config::{OutputTarget, RunConfig};
use crate::event::EventFrame;
use crate::exit_code::ExitCode;
use crate::frame::Positions;
use crate::health::Health;
use crate::leader::{self, Elector, Ended};
use crate::metrics::Metrics;
use crate::output::{self, OutputError, OutputFile, WriterStats};
use crate::resume::{self, Plan, ResumeError};
use crate::watch::{Keep, KubeApi, ListSorting, ScopeWatch, Shared, SpillDir, Start, WatchError};

/// Why `run` failed; each kind has its own exit code.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Resume(#[from] ResumeError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("cannot serve HTTP on {addr}: {source}")]
    Http {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Watch(#[from] WatchError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl RunError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            RunError::Cluster(_) => ExitCode::NoCluster,
            RunError::Watch(WatchError::OutputClosed) => ExitCode::Failure,
            RunError::Watch(_) => ExitCode::Refused,
            RunError::Output(OutputError::Locked { .. }) => ExitCode::Locked,
            _ => ExitCode::Failure,
        }
    }
}

/// What every leadership term shares.
struct Context {
    config: RunConfig,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    api: Arc<KubeApi>,
    lists: Arc<ListSorting>,
    keep: Option<Keep>,
}

/// Runs until `shutdown` resolves (then returns `Ok`) or a fatal error.
pub async fn run(config: RunConfig, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
    let health = Arc::new(Health::new(&config.scopes));
    let metrics = Arc::new(Metrics::with_event_labels(config.event_labels));
    // What can fail on the command line's account (cluster access, the HTTP address) comes
    // before the output is touched: a start that fails there leaves nothing behind.
    let cluster = cluster::client(config.kubeconfig.as_deref(), config.context.as_deref()).await?;
    let http = match &config.http_addr {
        Some(addr) => Some(
            crate::http::bind(addr, health.clone(), metrics.clone())
                .await
                .map_err(|source| RunError::Http {
                    addr: addr.clone(),
                    source,
                })?,
        ),
        None => None,
    };
    // Before anything reads or repairs the output: it may be another process's.
    let _lock = match &config.output {
        OutputTarget::File(path) => Some(output::Lock::acquire(path)?),
        OutputTarget::Stdout => None,
    };
    let spill = spill_dir(&config.output);
    let http = match http {
        Some((http_addr, serve)) => {
            tracing::info!(%http_addr, "serving /healthz, /readyz and /metrics");
            Some(tokio::spawn(serve))
        }
        None => {
            tracing::info!("no HTTP listener (--http-addr off): no probes, no metrics");
            None
        }
    };
    if let Some(sel) = &config.field_selector {
        tracing::info!(field_selector = %sel, "the API server filters by this field selector");
    }
    let keep: Option<Keep> = config.filter.clone().map(|filter| {
        let keep: Keep = Arc::new(move |event: &EventFrame<'_>| filter.matches(event));
        keep
    });
    let client = cluster.client;
    let api = Arc::new(KubeApi::new(
        client.clone(),
        cluster.watch,
        config.list_page_size,
        config.field_selector.clone(),
    ));
    let lists = Arc::new(ListSorting::new(spill, config.list_sort_memory));
    let election = config.leader.clone();
    let ctx = Context {
        config,
        health,
        metrics,
        api,
        lists,
        keep,
    };
    tokio::pin!(shutdown);
    let result = match election {
        None => {
            ctx.metrics.leader.set_leader(true);
            let start = term(&ctx, &Positions::new())?;
            let never = std::future::pending::<()>();
            lead(&ctx, start, &mut shutdown, never).await.map(|_| ())
        }
        Some(election) => elect(&ctx, Elector::new(client, election), &mut shutdown).await,
    };
    if let Some(http) = http {
        http.abort();
    }
    result
}

/// `--leader-elect`: stands by until this replica holds the Lease, writes while it does, and
/// stands by again if it loses it. At shutdown the leader records its final position in the
/// Lease and releases it.
async fn elect(
    ctx: &Context,
    mut elector: Elector,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Result<(), RunError> {
    let config = elector.config().clone();
    tracing::info!(identity = %config.identity, lease = %format!("{}/{}", config.namespace, config.name), "standing by for the Lease");
    loop {
        let (health, metrics, scopes) = (&ctx.health, &ctx.metrics, &ctx.config.scopes);
        let Some(handover) =
            leader::stand_by(&mut elector, health, metrics, scopes, shutdown).await
        else {
            return Ok(());
        };
        let start = term(ctx, &handover)?;
        let view = start.0.view();
        let renewing = leader::keep_leading(&mut elector, view.clone());
        let ended = lead(ctx, start, shutdown, renewing).await?;
        leader::step_down(&mut elector, metrics, &view, ended).await;
        if ended == Ended::Shutdown {
            return Ok(());
        }
    }
}

/// Where a term starts: the output recovered and read back, the newer of its positions and
/// `handover` (the previous leader's) taken, each scope's start planned.
fn term(ctx: &Context, handover: &Positions) -> Result<(Checkpoint, Plan), RunError> {
    let config = &ctx.config;
    let mut plan = resume::recover(&config.output, &config.scopes)?;
    resume::hand_over(&config.output, &mut plan, handover)?;
    let file = match &config.output {
        OutputTarget::File(path) => Some(path.clone()),
        OutputTarget::Stdout => None,
    };
    let checkpoint = Checkpoint::new(file, plan.covered.clone(), plan.positions());
    Ok((checkpoint, plan))
}

/// One term of writing: starts the writer, recording into `checkpoint`, and one watch per
/// scope from where `plan` says, and supervises them until shutdown, a fatal error or `lost`
/// resolves.
async fn lead(
    ctx: &Context,
    (checkpoint, mut plan): (Checkpoint, Plan),
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    lost: impl Future<Output = ()>,
) -> Result<Ended, RunError> {
    let config = &ctx.config;
    let cancel = CancellationToken::new();
    let (tx, writer) = start_writer(
        config,
        ctx.health.clone(),
        ctx.metrics.clone(),
        cancel.clone(),
        checkpoint,
    )?;
    let writer = tokio::task::spawn_blocking(move || writer.join());
    let shared = Shared {
        api: ctx.api.clone(),
        out: tx,
        health: ctx.health.clone(),
        metrics: ctx.metrics.clone(),
        cancel: cancel.clone(),
        keep: ctx.keep.clone(),
        stall_timeout: config.stall_timeout,
        lists: ctx.lists.clone(),
        occurrence_events: config.occurrence_events,
    };
    let mut watches = JoinSet::new();
    for scope in &config.scopes {
        let start = plan.starts.remove(scope).unwrap_or(Start::List {
            marks: Default::default(),
        });
        watches.spawn(ScopeWatch::new(scope.clone(), shared.clone(), start).run());
    }
    drop(shared);
    supervise(watches, writer, cancel, shutdown, lost).await
}

/// Where a LIST larger than `--list-sort-memory` is sorted: beside the output file (its
/// leftovers from a crash removed now, under the output's lock), or the temp directory when
/// writing to stdout.
fn spill_dir(output: &OutputTarget) -> SpillDir {
    let OutputTarget::File(path) = output else {
        return SpillDir::new(std::env::temp_dir(), ".kube-event-logger.list-".into());
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let spill = SpillDir::new(
        crate::output_files::parent(path)
            .unwrap_or(std::path::Path::new("."))
            .to_path_buf(),
        crate::output_files::Naming::new(&name).list_sort(),
    );
    match spill.remove_leftovers() {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            files = n,
            "removed LIST sort files left by an earlier crash"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "could not remove LIST sort files left by an earlier crash")
        }
    }
    spill
}

type WriterTask = tokio::task::JoinHandle<std::thread::Result<Result<WriterStats, OutputError>>>;

/// Waits for shutdown or the first fatal error, then for the watches to stop and the writer to
/// write, flush and sync what they read. The first failure wins.
async fn supervise(
    mut watches: JoinSet<Result<(), WatchError>>,
    mut writer: WriterTask,
    cancel: CancellationToken,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    lost: impl Future<Output = ()>,
) -> Result<Ended, RunError> {
    let mut failure: Option<RunError> = None;
    let mut ended = Ended::Shutdown;
    let mut watches_done = false;
    let mut stats: Option<WriterStats> = None;
    let mut writer_done = false;
    tokio::pin!(lost);
    while !(watches_done && writer_done) {
        tokio::select! {
            _ = &mut *shutdown, if !cancel.is_cancelled() => cancel.cancel(),
            _ = &mut lost, if !cancel.is_cancelled() => {
                ended = Ended::Lost;
                cancel.cancel();
            }
            joined = watches.join_next(), if !watches_done => match joined {
                None => watches_done = true,
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(e))) => {
                    failure.get_or_insert(e.into());
                    cancel.cancel();
                }
                Some(Err(e)) => {
                    failure.get_or_insert(RunError::Internal(format!("a watch task failed: {e}")));
                    cancel.cancel();
                }
            },
            joined = &mut writer, if !writer_done => {
                writer_done = true;
                cancel.cancel();
                match joined {
                    Ok(Ok(Ok(s))) => stats = Some(s),
                    // The writer's error explains any watch that found the output closed.
                    Ok(Ok(Err(e))) => failure = Some(e.into()),
                    Ok(Err(_)) | Err(_) => failure = Some(RunError::Internal("the writer thread panicked".into())),
                }
            }
        }
    }
    if let Some(s) = stats {
        tracing::info!(
            bytes = s.bytes,
            writes = s.writes,
            "output flushed and synced"
        );
    }
    failure.map_or(Ok(ended), Err)
}

type WriterHandle = std::thread::JoinHandle<Result<WriterStats, OutputError>>;

fn start_writer(
    config: &RunConfig,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
    checkpoint: Checkpoint,
) -> Result<(output::OutputHandle, WriterHandle), RunError> {
    let retry = Backoff::default();
    Ok(match &config.output {
        OutputTarget::File(path) => {
            let file = OutputFile::open(path, config.limits)?.with_metrics(metrics.clone());
            output::spawn_writer(file, health, metrics, cancel, retry, checkpoint)
        }
        OutputTarget::Stdout => {
            output::spawn_writer(output::Stdout, health, metrics, cancel, retry, checkpoint)
        }
    })
}
