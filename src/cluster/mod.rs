//! Cluster access the standard way: an explicit --kubeconfig, else the in-cluster service
//! account, else $KUBECONFIG, else ~/.kube/config (the order controller-runtime uses); the
//! client for every request, and the watch's own connections (`wire`).

mod chunked;
mod wire;

pub use wire::{WatchBody, WatchService};

use std::path::Path;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::telemetry::root_cause;

/// Longest wait for one request's answer (a LIST page whole, a watch's response head, a Lease
/// call) before the connection is taken as dead. The API server ends a non-watch request after
/// 60 s (`--request-timeout`). A watch's body is bounded by its stall check and by the
/// `timeoutSeconds` it asks for, not by a per-read timeout: that would re-arm a timer on every
/// read and cost a wake-up per event.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// `fut`, or the error `timed_out` makes of [`REQUEST_TIMEOUT`] (in seconds) when it has not
/// finished by then.
pub async fn bounded<T, E>(
    fut: impl Future<Output = Result<T, E>>,
    timed_out: impl FnOnce(u64) -> E,
) -> Result<T, E> {
    tokio::time::timeout(REQUEST_TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| Err(timed_out(REQUEST_TIMEOUT.as_secs())))
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Only the root cause is told: kube's own text quotes the path again, debug-formatted.
    #[error("cannot read the kubeconfig {path}: {}", root_cause(.cause))]
    Kubeconfig {
        path: String,
        cause: kube::config::KubeconfigError,
    },
    #[error(
        "the kubeconfig has no context {name:?}; it has: {}. Pick one with --context",
        if known.is_empty() { "none".to_string() } else { known.join(", ") }
    )]
    UnknownContext { name: String, known: Vec<String> },
    #[error("cannot load cluster access from the kubeconfig: {0}")]
    Load(#[source] kube::config::KubeconfigError),
    #[error(
        "no cluster access: not in a pod (KUBERNETES_SERVICE_HOST is not set), and cannot read \
         {tried}: {}. Give --kubeconfig PATH, set KUBECONFIG, or run in the cluster",
        root_cause(.cause)
    )]
    Nowhere {
        /// What was tried: `$KUBECONFIG (a:b)` or the default file.
        tried: String,
        cause: kube::config::KubeconfigError,
    },
    #[error("cannot load in-cluster access: {0}")]
    InCluster(#[source] kube::config::InClusterError),
    #[error("cannot build the API client: {0}")]
    Client(#[source] kube::Error),
    #[error(
        "the kubeconfig sets proxy-url {0}; kube-event-logger connects to the API server \
         directly: remove proxy-url from the cluster entry, or give a kubeconfig without it"
    )]
    Proxy(String),
}

/// Builds the client (see [`stack`]).
pub async fn client(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<Cluster, ClusterError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
        && std::env::var_os("KUBECONFIG").is_none()
        && context.is_none();
    let mut config = if kubeconfig.is_none() && in_cluster {
        kube::Config::incluster().map_err(ClusterError::InCluster)?
    } else {
        let kc = match kubeconfig {
            Some(path) => {
                Kubeconfig::read_from(path).map_err(|cause| ClusterError::Kubeconfig {
                    path: path.display().to_string(),
                    cause,
                })?
            }
            None => Kubeconfig::read().map_err(|cause| ClusterError::Nowhere {
                tried: default_kubeconfig(),
                cause,
            })?,
        };
        if let Some(name) = context
            && !kc.contexts.iter().any(|c| c.name == name)
        {
            return Err(ClusterError::UnknownContext {
                name: name.to_string(),
                known: kc.contexts.iter().map(|c| c.name.clone()).collect(),
            });
        }
        kube::Config::from_custom_kubeconfig(kc, &options)
            .await
            .map_err(ClusterError::Load)?
    };
    // Each request is bounded on its own (`bounded`); see REQUEST_TIMEOUT.
    config.read_timeout = None;
    tracing::info!(server = %config.cluster_url, "cluster access loaded");
    stack(config)
}

/// How the API server is reached: the client for every request, and the watch's service, which
/// sends a WATCH through the same layers on a connection of its own (see `wire`).
pub struct Cluster {
    pub client: kube::Client,
    pub watch: WatchService,
}

/// The client's stack, built as kube documents for a custom client (`kube::client::ConfigExt`):
/// the cluster's address, its credentials (a token that expires refreshed), the kubeconfig's
/// extra and impersonation headers, TLS by rustls and the connect timeout. Left out of kube's
/// default stack: its retry layer (retries, backoff and Retry-After are the watch loop's, which
/// must see every failure) and its tracing layer, whose body wrapper reads the clock twice and
/// enters a span for every chunk of a watch (tower-http's `trace::ResponseBody`) — per event on
/// a busy cluster, for log lines we never enable (our diagnostics are our own).
fn stack(config: kube::Config) -> Result<Cluster, ClusterError> {
    use kube::client::ConfigExt;
    if let Some(url) = &config.proxy_url {
        return Err(ClusterError::Proxy(url.to_string()));
    }
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(config.connect_timeout);
    let https = config
        .rustls_https_connector_with_connector(http)
        .map_err(ClusterError::Client)?;
    // kube's layers are not Clone: each stack gets its own (with a token that expires, each
    // refreshes its own copy).
    macro_rules! layered {
        ($inner:expr) => {
            tower::ServiceBuilder::new()
                .layer(config.base_uri_layer())
                .option_layer(config.auth_layer().map_err(ClusterError::Client)?)
                .layer(config.extra_headers_layer().map_err(ClusterError::Client)?)
                .map_err(tower::BoxError::from)
                .service($inner)
        };
    }
    let watch = layered!(wire::Connect::new(https.clone()));
    let pooled = layered!(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(https)
    );
    Ok(Cluster {
        client: kube::Client::new(pooled, config.default_namespace),
        watch: WatchService::new(watch),
    })
}

/// The kubeconfig that is read without --kubeconfig, as said in a message.
fn default_kubeconfig() -> String {
    match std::env::var("KUBECONFIG") {
        Ok(v) if !v.is_empty() => format!("$KUBECONFIG ({v})"),
        _ => {
            let home = std::env::var("HOME").unwrap_or_else(|_| "~".into());
            format!("{home}/.kube/config (KUBECONFIG is not set)")
        }
    }
}
