//! A fake kube-apiserver for core/v1 Events over a real socket, plain HTTP or TLS, following
//! `../shared/k8s-watch-protocol.md`: paginated LIST with continue tokens (items without
//! kind/apiVersion), chunked WATCH streams of compact frames split at arbitrary chunk
//! boundaries, history compaction (410 ERROR frame inside a 200 stream, 410 on an old continue
//! token), bookmarks, bearer-token auth (401/403 with Status bodies), and injected faults.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::events;
use super::tls::TestPki;

type Body = BoxBody<Bytes, std::io::Error>;

/// A fault injected into the next matching request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// The next request (LIST or WATCH) is answered with this status and a Status body.
    Status { code: u16, retry_after: Option<u64> },
    /// The next WATCH sends `after` whole frames, then half of the next one, then drops the
    /// connection without ending the chunked body.
    DropMidFrame { after: usize },
    /// The next WATCH sends `after` whole frames, then a line that is not JSON.
    Garbage { after: usize },
    /// The next WATCH answers 200 and ends at once with no frame (a stuck position).
    EmptyWatch,
    /// The next WATCH answers 200 and then sends nothing, whatever happens, until it times out.
    FrozenWatch,
    /// The next LIST request that carries a continue token gets 410 Expired.
    ExpireContinue,
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub at: Instant,
    pub path: String,
    pub query: HashMap<String, String>,
    pub status: u16,
}

impl Recorded {
    pub fn is_watch(&self) -> bool {
        matches!(
            self.query.get("watch").map(String::as_str),
            Some("true" | "1")
        )
    }
    pub fn param(&self, k: &str) -> Option<&str> {
        self.query.get(k).map(String::as_str)
    }
}

#[derive(Clone)]
struct Change {
    rv: u64,
    kind: &'static str,
    namespace: String,
    /// The whole frame line, without `\n`.
    line: Arc<str>,
}

struct Stored {
    namespace: String,
    /// The object as a watch frame carries it (kind/apiVersion first).
    object: Arc<str>,
    count: u64,
}

struct Snapshot {
    rv: u64,
    items: Vec<(String, Arc<str>)>,
}

#[derive(Default)]
struct Inner {
    rv: u64,
    objects: BTreeMap<String, Stored>,
    history: Vec<Change>,
    compacted: u64,
    snapshots: HashMap<u64, Snapshot>,
    next_snapshot: u64,
    faults: VecDeque<Fault>,
    token: Option<String>,
    forbidden: bool,
    watch_timeout: Option<Duration>,
    paused: bool,
    requests: Vec<Recorded>,
    /// For benchmarks: a watch from this resourceVersion streams these bytes, then ends.
    prebuilt: Option<(String, Arc<Vec<Bytes>>)>,
    /// Continue pages built from the objects as they are now, not the first page's snapshot.
    live_lists: bool,
    /// LIST responses still to serve before new requests are held (as by `pause`).
    pause_after_lists: Option<usize>,
    /// coordination.k8s.io/v1 Leases by (namespace, name), as last written.
    leases: BTreeMap<(String, String), serde_json::Value>,
    lease_rv: u64,
    /// Lease updates (PUT) that name this holder fail with 503.
    failing_lease_holder: Option<String>,
    /// Every Lease request: what, for whom, with what result.
    lease_log: Vec<LeaseRequest>,
}

/// One request on a Lease, as the fake server saw it.
#[derive(Debug, Clone)]
pub struct LeaseRequest {
    pub at: Instant,
    pub method: String,
    /// `spec.holderIdentity` of the body sent (PUT/POST), if any.
    pub holder: Option<String>,
    pub status: u16,
}

struct Shared {
    inner: Mutex<Inner>,
    /// Bumped on every change to history.
    changed: watch::Sender<u64>,
    /// Bumped to end every open watch.
    kill: watch::Sender<u64>,
    /// Bumped when paused requests may go on.
    resumed: watch::Sender<u64>,
}

pub struct FakeApiServer {
    pub addr: SocketAddr,
    pub pki: Option<TestPki>,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeApiServer {
    /// Plain HTTP, no authentication.
    pub async fn plain() -> Self {
        Self::start(None, None).await
    }

    /// HTTPS with a throwaway CA, requiring `Bearer <token>`.
    pub async fn tls(token: &str) -> Self {
        Self::start(Some(TestPki::generate()), Some(token.to_string())).await
    }

    async fn start(pki: Option<TestPki>, token: Option<String>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                rv: 1000,
                token,
                ..Inner::default()
            }),
            changed: watch::channel(0).0,
            kill: watch::channel(0).0,
            resumed: watch::channel(0).0,
        });
        let acceptor = pki.as_ref().map(|p| p.acceptor());
        let s = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let s = s.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(s.clone(), req));
                    let http = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        Some(acc) => {
                            if let Ok(tls) = acc.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(tls), svc).await;
                            }
                        }
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                        }
                    }
                });
            }
        });
        FakeApiServer {
            addr,
            pki,
            shared,
            task,
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.pki.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// A kubeconfig for this server. `token` is the user's bearer token (TLS servers only).
    pub fn kubeconfig(&self, token: Option<&str>) -> String {
        use base64::Engine;
        let ca = self
            .pki
            .as_ref()
            .map(|p| {
                let data = base64::engine::general_purpose::STANDARD.encode(p.ca_pem.as_bytes());
                format!("\n    certificate-authority-data: {data}")
            })
            .unwrap_or_default();
        let user = token
            .map(|t| format!("\n    token: {t}"))
            .unwrap_or_else(|| " {}".into());
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}{ca}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
             current-context: fake\nusers:\n- name: fake\n  user:{user}\n",
            self.url()
        )
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut inner = self.shared.inner.lock().unwrap();
        f(&mut inner)
    }

    fn record_change(&self, inner: &mut Inner, change: Change) {
        inner.history.push(change);
        let rv = inner.rv;
        self.shared.changed.send_replace(rv);
    }

    /// Creates an Event; returns the ADDED frame line the client should write.
    pub fn add(&self, namespace: &str, name: &str) -> String {
        self.change("ADDED", namespace, name)
    }

    /// Records another occurrence of an Event (count + 1); returns the MODIFIED frame line.
    pub fn occur(&self, namespace: &str, name: &str) -> String {
        self.change("MODIFIED", namespace, name)
    }

    /// Deletes an Event (TTL expiry); returns the DELETED frame line.
    pub fn delete(&self, namespace: &str, name: &str) -> String {
        self.change("DELETED", namespace, name)
    }

    /// One change to an Event at the next revision; returns its frame line.
    fn change(&self, kind: &'static str, namespace: &str, name: &str) -> String {
        self.with(|inner| {
            inner.rv += 1;
            let rv = inner.rv;
            let key = key(namespace, name);
            let count = match kind {
                "ADDED" => 1,
                _ => {
                    inner.objects.get(&key).expect("no such event").count
                        + u64::from(kind == "MODIFIED")
                }
            };
            let object: Arc<str> = events::event_object(namespace, name, rv, count).into();
            if kind == "DELETED" {
                inner.objects.remove(&key);
            } else {
                let stored = Stored {
                    namespace: namespace.into(),
                    object: object.clone(),
                    count,
                };
                inner.objects.insert(key, stored);
            }
            let line = events::frame(kind, &object);
            self.record_change(
                inner,
                Change {
                    rv,
                    kind,
                    namespace: namespace.into(),
                    line: line.clone().into(),
                },
            );
            line
        })
    }

    /// Streams a frame given in wire form, its metadata.resourceVersion renumbered to the next
    /// revision. Returns the line as the client should write it.
    pub fn emit_line(&self, line: &str) -> String {
        self.with(|inner| {
            inner.rv += 1;
            let rv = inner.rv;
            let line = events::renumber(line, rv);
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            let kind: &'static str = match v["type"].as_str().unwrap() {
                "ADDED" => "ADDED",
                "MODIFIED" => "MODIFIED",
                "DELETED" => "DELETED",
                other => panic!("emit_line: {other}"),
            };
            let namespace = v["object"]["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            self.record_change(
                inner,
                Change {
                    rv,
                    kind,
                    namespace,
                    line: line.clone().into(),
                },
            );
            line
        })
    }

    /// Sends a BOOKMARK at the current revision to open watches.
    pub fn bookmark(&self) {
        self.with(|inner| {
            let rv = inner.rv;
            let line = format!(
                r#"{{"type":"BOOKMARK","object":{{"kind":"Event","apiVersion":"v1","metadata":{{"resourceVersion":"{rv}","creationTimestamp":null}},"involvedObject":{{}},"source":{{}},"firstTimestamp":null,"lastTimestamp":null,"eventTime":null,"reportingComponent":"","reportingInstance":""}}}}"#
            );
            self.record_change(
                inner,
                Change {
                    rv,
                    kind: "BOOKMARK",
                    namespace: String::new(),
                    line: line.into(),
                },
            );
        });
    }

    /// Creates `n` Events at once, without history (as if compacted since), spread over 7
    /// namespaces, named so that LIST order (by namespace and name) is not resourceVersion order.
    /// Returns (namespace, name) of each, oldest first; see [`preloaded_line`].
    pub fn preload(&self, n: u64) -> Vec<(String, String)> {
        self.with(|inner| {
            let mut made = Vec::with_capacity(n as usize);
            for j in 0..n {
                inner.rv += 1;
                let namespace = format!("ns-{}", j % 7);
                // A permutation of 0..n (7919 is prime), so names sort apart from versions.
                let name = format!("ev-{:08}", (j * 7919 + 13) % n.max(1));
                let object: Arc<str> = events::event_object(&namespace, &name, inner.rv, 1).into();
                let stored = Stored {
                    namespace: namespace.clone(),
                    object,
                    count: 1,
                };
                inner.objects.insert(key(&namespace, &name), stored);
                made.push((namespace, name));
            }
            inner.compacted = inner.rv;
            made
        })
    }

    /// LIST continue pages come from the objects as they are when each page is asked for, each
    /// page carrying the current resourceVersion: a server that does not serve one snapshot.
    pub fn set_live_lists(&self, live: bool) {
        self.with(|inner| inner.live_lists = live);
    }

    /// After `n` more LIST responses, holds new requests until [`resume`](Self::resume).
    pub fn pause_after_lists(&self, n: usize) {
        self.with(|inner| inner.pause_after_lists = Some(n));
    }

    /// The Lease as stored, if created.
    pub fn lease(&self, namespace: &str, name: &str) -> Option<serde_json::Value> {
        self.with(|inner| inner.leases.get(&(namespace.into(), name.into())).cloned())
    }

    /// While set, updates of a Lease that name this holder fail with 503 (the holder is cut
    /// off from the API server; everyone else gets through).
    pub fn fail_lease_updates_by(&self, holder: Option<&str>) {
        self.with(|inner| inner.failing_lease_holder = holder.map(Into::into));
    }

    pub fn lease_log(&self) -> Vec<LeaseRequest> {
        self.with(|inner| inner.lease_log.clone())
    }

    /// Forgets history up to now, as etcd compaction does: older positions get 410.
    pub fn compact(&self) {
        self.with(|inner| {
            inner.compacted = inner.rv;
            let c = inner.compacted;
            inner.history.retain(|ch| ch.rv > c);
        });
    }

    /// Ends every open watch cleanly (as `timeoutSeconds` or a server restart would).
    pub fn close_watches(&self) {
        self.shared.kill.send_modify(|g| *g += 1);
    }

    /// Holds new requests until [`resume`](Self::resume).
    pub fn pause(&self) {
        self.with(|inner| inner.paused = true);
    }

    pub fn resume(&self) {
        self.with(|inner| inner.paused = false);
        self.shared.resumed.send_modify(|g| *g += 1);
    }

    pub fn fault(&self, fault: Fault) {
        self.with(|inner| inner.faults.push_back(fault));
    }

    pub fn set_forbidden(&self, forbidden: bool) {
        self.with(|inner| inner.forbidden = forbidden);
    }

    /// Ends each watch after this long, whatever timeoutSeconds asked.
    pub fn set_watch_timeout(&self, d: Duration) {
        self.with(|inner| inner.watch_timeout = Some(d));
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.with(|inner| inner.requests.clone())
    }

    pub fn current_rv(&self) -> u64 {
        self.with(|inner| inner.rv)
    }

    /// Benchmarks: a watch from `from_rv` sends these chunks (together, whole frame lines), each
    /// as one HTTP chunk, then ends. The LIST stays empty at `from_rv`.
    pub fn prebuilt_stream(&self, from_rv: u64, chunks: Vec<Bytes>) {
        self.with(|inner| {
            inner.rv = from_rv;
            inner.prebuilt = Some((from_rv.to_string(), Arc::new(chunks)));
        });
    }

    /// Back to serving watches from the history.
    pub fn clear_prebuilt(&self) {
        self.with(|inner| inner.prebuilt = None);
    }
}

/// A parsed `fieldSelector`: (label, wanted, equal?) terms, all of which must hold.
type Selector = Vec<(String, String, bool)>;

/// The field labels kube-apiserver supports for core/v1 Events, and where each reads.
fn selector_path(label: &str) -> Option<&'static [&'static str]> {
    Some(match label {
        "metadata.name" => &["metadata", "name"],
        "metadata.namespace" => &["metadata", "namespace"],
        "involvedObject.kind" => &["involvedObject", "kind"],
        "involvedObject.namespace" => &["involvedObject", "namespace"],
        "involvedObject.name" => &["involvedObject", "name"],
        "involvedObject.uid" => &["involvedObject", "uid"],
        "involvedObject.apiVersion" => &["involvedObject", "apiVersion"],
        "involvedObject.resourceVersion" => &["involvedObject", "resourceVersion"],
        "involvedObject.fieldPath" => &["involvedObject", "fieldPath"],
        "reason" => &["reason"],
        "reportingComponent" => &["reportingComponent"],
        "source" => &["source", "component"],
        "type" => &["type"],
        _ => return None,
    })
}

fn parse_selector(sel: &str) -> Result<Selector, String> {
    sel.split(',')
        .filter(|t| !t.is_empty())
        .map(|term| {
            let (label, value, eq) = if let Some((l, v)) = term.split_once("!=") {
                (l, v, false)
            } else if let Some((l, v)) = term.split_once("==") {
                (l, v, true)
            } else if let Some((l, v)) = term.split_once('=') {
                (l, v, true)
            } else {
                return Err(format!(
                    "invalid selector: '{sel}'; can't understand '{term}'"
                ));
            };
            selector_path(label).ok_or_else(|| format!("field label not supported: {label}"))?;
            Ok((label.to_string(), value.to_string(), eq))
        })
        .collect()
}

/// Whether a frame line's object passes the selector.
fn selected(selector: &Selector, line: &str) -> bool {
    if selector.is_empty() {
        return true;
    }
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let object = if v.get("object").is_some() {
        &v["object"]
    } else {
        &v
    };
    selector.iter().all(|(label, wanted, eq)| {
        let mut at = object;
        for k in selector_path(label).unwrap() {
            at = &at[*k];
        }
        (at.as_str().unwrap_or("") == wanted) == *eq
    })
}

fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

fn full(status: StatusCode, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(
            Full::new(Bytes::from(body))
                .map_err(|never: Infallible| match never {})
                .boxed(),
        )
        .unwrap()
}

fn status_body(code: u16, reason: &str, message: &str) -> String {
    serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    })
    .to_string()
}

fn error_response(code: u16, retry_after: Option<u64>) -> Response<Body> {
    let reason = match code {
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        _ => "Unknown",
    };
    let mut resp = full(
        StatusCode::from_u16(code).unwrap(),
        status_body(code, reason, &format!("injected {code}")),
    );
    if let Some(s) = retry_after {
        resp.headers_mut()
            .insert("retry-after", s.to_string().parse().unwrap());
    }
    resp
}

/// Parses `/api/v1/events` and `/api/v1/namespaces/{ns}/events`.
fn scope_of(path: &str) -> Option<Option<String>> {
    if path == "/api/v1/events" {
        return Some(None);
    }
    let rest = path.strip_prefix("/api/v1/namespaces/")?;
    let (ns, tail) = rest.split_once('/')?;
    (tail == "events").then(|| Some(ns.to_string()))
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    if req.uri().path().starts_with(LEASES) {
        return Ok(lease_request(&shared, req).await);
    }
    let path = req.uri().path().to_string();
    let query: HashMap<String, String> = req.uri().query().map(url_pairs).unwrap_or_default();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Paused: wait until resumed.
    let mut resumed = shared.resumed.subscribe();
    while shared.inner.lock().unwrap().paused {
        if resumed.changed().await.is_err() {
            break;
        }
    }
    let resp = route(&shared, &path, &query, auth.as_deref());
    let mut inner = shared.inner.lock().unwrap();
    let watching = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    if !watching && let Some(left) = inner.pause_after_lists.as_mut() {
        *left = left.saturating_sub(1);
        if *left == 0 {
            inner.pause_after_lists = None;
            inner.paused = true;
        }
    }
    inner.requests.push(Recorded {
        at: Instant::now(),
        path,
        query,
        status: resp.status().as_u16(),
    });
    Ok(resp)
}

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/";

/// GET, POST (create) and PUT (replace, with the resourceVersion precondition) on Leases, as
/// kube-apiserver answers them: 404 before creation, 409 AlreadyExists on a second create, 409
/// Conflict on a stale resourceVersion.
async fn lease_request(shared: &Shared, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let sent: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let holder = sent
        .as_ref()
        .and_then(|v| v["spec"]["holderIdentity"].as_str())
        .map(str::to_owned);
    let rest = path.trim_start_matches(LEASES);
    let parts: Vec<&str> = rest.split('/').collect();
    let mut inner = shared.inner.lock().unwrap();
    let resp = match (method.as_str(), parts.as_slice()) {
        ("GET", [ns, "leases", name]) => {
            match inner.leases.get(&(ns.to_string(), name.to_string())) {
                Some(lease) => full(StatusCode::OK, lease.to_string()),
                None => not_found(name),
            }
        }
        ("POST", [ns, "leases"]) => {
            let mut lease = sent.unwrap_or_default();
            let name = lease["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let key = (ns.to_string(), name.clone());
            if inner.leases.contains_key(&key) {
                full(
                    StatusCode::CONFLICT,
                    status_body(
                        409,
                        "AlreadyExists",
                        &format!("leases.coordination.k8s.io \"{name}\" already exists"),
                    ),
                )
            } else {
                inner.lease_rv += 1;
                lease["metadata"]["resourceVersion"] = inner.lease_rv.to_string().into();
                lease["metadata"]["namespace"] = ns.to_string().into();
                lease["metadata"]["uid"] = format!("lease-{name}").into();
                inner.leases.insert(key, lease.clone());
                full(StatusCode::CREATED, lease.to_string())
            }
        }
        ("PUT", [ns, "leases", name]) => {
            let key = (ns.to_string(), name.to_string());
            let mut lease = sent.unwrap_or_default();
            let failing =
                inner.failing_lease_holder.is_some() && inner.failing_lease_holder == holder;
            match inner.leases.get(&key) {
                _ if failing => error_response(503, None),
                None => not_found(name),
                Some(current)
                    if current["metadata"]["resourceVersion"]
                        != lease["metadata"]["resourceVersion"] =>
                {
                    full(
                        StatusCode::CONFLICT,
                        status_body(
                            409,
                            "Conflict",
                            &format!(
                                "Operation cannot be fulfilled on leases.coordination.k8s.io \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                            ),
                        ),
                    )
                }
                Some(_) => {
                    inner.lease_rv += 1;
                    lease["metadata"]["resourceVersion"] = inner.lease_rv.to_string().into();
                    inner.leases.insert(key, lease.clone());
                    full(StatusCode::OK, lease.to_string())
                }
            }
        }
        _ => full(
            StatusCode::METHOD_NOT_ALLOWED,
            status_body(
                405,
                "MethodNotAllowed",
                "the fake server serves get, create and update on leases",
            ),
        ),
    };
    inner.lease_log.push(LeaseRequest {
        at: Instant::now(),
        method,
        holder,
        status: resp.status().as_u16(),
    });
    resp
}

fn not_found(name: &str) -> Response<Body> {
    full(
        StatusCode::NOT_FOUND,
        status_body(
            404,
            "NotFound",
            &format!("leases.coordination.k8s.io \"{name}\" not found"),
        ),
    )
}

fn url_pairs(q: &str) -> HashMap<String, String> {
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

fn route(
    shared: &Arc<Shared>,
    path: &str,
    query: &HashMap<String, String>,
    auth: Option<&str>,
) -> Response<Body> {
    let Some(namespace) = scope_of(path) else {
        return full(
            StatusCode::NOT_FOUND,
            status_body(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ),
        );
    };
    let watching = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    let mut inner = shared.inner.lock().unwrap();
    if let Some(token) = &inner.token
        && auth != Some(format!("Bearer {token}").as_str())
    {
        return full(
            StatusCode::UNAUTHORIZED,
            status_body(401, "Unauthorized", "Unauthorized"),
        );
    }
    if inner.forbidden {
        let verb = if watching { "watch" } else { "list" };
        let at = match &namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".into(),
        };
        return full(
            StatusCode::FORBIDDEN,
            status_body(
                403,
                "Forbidden",
                &format!(
                    "events is forbidden: User \"system:serviceaccount:kube-system:kube-event-logger\" cannot {verb} resource \"events\" in API group \"\" {at}"
                ),
            ),
        );
    }
    // A Status fault applies to the next request of any kind.
    if let Some(Fault::Status { code, retry_after }) = inner.faults.front().cloned() {
        inner.faults.pop_front();
        return error_response(code, retry_after);
    }
    let selector = match parse_selector(query.get("fieldSelector").map_or("", String::as_str)) {
        Ok(s) => s,
        Err(message) => {
            return full(
                StatusCode::BAD_REQUEST,
                status_body(400, "BadRequest", &message),
            );
        }
    };
    if watching {
        let rv = query.get("resourceVersion").cloned().unwrap_or_default();
        let timeout = query
            .get("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(1800));
        let timeout = inner.watch_timeout.map_or(timeout, |t| t.min(timeout));
        let fault = match inner.faults.front() {
            Some(
                Fault::DropMidFrame { .. }
                | Fault::Garbage { .. }
                | Fault::EmptyWatch
                | Fault::FrozenWatch,
            ) => inner.faults.pop_front(),
            _ => None,
        };
        drop(inner);
        watch_response(shared.clone(), namespace, selector, rv, timeout, fault)
    } else {
        list_response(&mut inner, namespace, &selector, query)
    }
}

fn list_response(
    inner: &mut Inner,
    namespace: Option<String>,
    selector: &Selector,
    query: &HashMap<String, String>,
) -> Response<Body> {
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|&l| l > 0)
        .unwrap_or(usize::MAX);
    if inner.live_lists {
        return live_list_response(inner, namespace, selector, query, limit);
    }
    let (id, offset) = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let Some((id, offset)) = token
                .split_once(':')
                .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<usize>().ok()?)))
            else {
                return full(
                    StatusCode::BAD_REQUEST,
                    status_body(400, "BadRequest", "continue key is not valid"),
                );
            };
            let expire = matches!(inner.faults.front(), Some(Fault::ExpireContinue));
            let stale = inner
                .snapshots
                .get(&id)
                .is_none_or(|s| s.rv < inner.compacted);
            if expire || stale {
                if expire {
                    inner.faults.pop_front();
                }
                return full(
                    StatusCode::GONE,
                    status_body(
                        410,
                        "Expired",
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                    ),
                );
            }
            (id, offset)
        }
        None => {
            let items = inner
                .objects
                .values()
                .filter(|o| {
                    namespace.as_deref().is_none_or(|ns| ns == o.namespace)
                        && selected(selector, &o.object)
                })
                .map(|o| (o.namespace.clone(), o.object.clone()))
                .collect();
            inner.next_snapshot += 1;
            let id = inner.next_snapshot;
            inner.snapshots.insert(
                id,
                Snapshot {
                    rv: inner.rv,
                    items,
                },
            );
            (id, 0)
        }
    };
    let snapshot = &inner.snapshots[&id];
    let end = offset.saturating_add(limit).min(snapshot.items.len());
    let items: Vec<String> = snapshot.items[offset..end]
        .iter()
        .map(|(_, obj)| events::strip_kind(obj))
        .collect();
    let cont = if end < snapshot.items.len() {
        format!(r#","continue":"{id}:{end}""#)
    } else {
        String::new()
    };
    let body = format!(
        r#"{{"kind":"EventList","apiVersion":"v1","metadata":{{"resourceVersion":"{}"{cont}}},"items":[{}]}}"#,
        snapshot.rv,
        items.join(",")
    );
    full(StatusCode::OK, body)
}

/// The line the client writes for a preloaded Event at `rv`.
pub fn preloaded_line(namespace: &str, name: &str, rv: u64) -> String {
    events::frame("ADDED", &events::event_object(namespace, name, rv, 1))
}

/// A LIST page from the objects as they are now: items after the key in the continue token,
/// at the current resourceVersion.
fn live_list_response(
    inner: &Inner,
    namespace: Option<String>,
    selector: &Selector,
    query: &HashMap<String, String>,
    limit: usize,
) -> Response<Body> {
    use std::ops::Bound;
    let after = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => Bound::Excluded(token.clone()),
        None => Bound::Unbounded,
    };
    let mut page = Vec::new();
    let mut last = None;
    let mut more = false;
    for (key, o) in inner.objects.range((after, Bound::Unbounded)) {
        if namespace.as_deref().is_some_and(|ns| ns != o.namespace)
            || !selected(selector, &o.object)
        {
            continue;
        }
        if page.len() == limit {
            more = true;
            break;
        }
        page.push(events::strip_kind(&o.object));
        last = Some(key.clone());
    }
    let cont = match last.filter(|_| more) {
        Some(key) => format!(r#","continue":{}"#, serde_json::to_string(&key).unwrap()),
        None => String::new(),
    };
    let body = format!(
        r#"{{"kind":"EventList","apiVersion":"v1","metadata":{{"resourceVersion":"{}"{cont}}},"items":[{}]}}"#,
        inner.rv,
        page.join(",")
    );
    full(StatusCode::OK, body)
}

fn watch_response(
    shared: Arc<Shared>,
    namespace: Option<String>,
    selector: Selector,
    rv: String,
    timeout: Duration,
    fault: Option<Fault>,
) -> Response<Body> {
    let (tx, body) = http_body_util::channel::Channel::<Bytes, std::io::Error>::new(8);
    let resp = Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(body.boxed())
        .unwrap();
    let cursor = match rv.as_str() {
        "" | "0" => 0,
        n => n.parse::<u64>().unwrap_or(0),
    };
    let stream = WatchStream {
        changed: shared.changed.subscribe(),
        kill: shared.kill.subscribe(),
        shared,
        namespace,
        selector,
        fault,
        tx,
        rng: fastrand::Rng::with_seed(cursor),
        sent: 0,
    };
    tokio::spawn(stream.run(rv, cursor, tokio::time::Instant::now() + timeout));
    resp
}

/// One open watch: what it sends, until the deadline, a close, or a fault ends it.
struct WatchStream {
    shared: Arc<Shared>,
    namespace: Option<String>,
    selector: Selector,
    fault: Option<Fault>,
    tx: http_body_util::channel::Sender<Bytes, std::io::Error>,
    changed: tokio::sync::watch::Receiver<u64>,
    kill: tokio::sync::watch::Receiver<u64>,
    rng: fastrand::Rng,
    /// Frames sent so far (where a fault strikes).
    sent: usize,
}

impl WatchStream {
    async fn run(mut self, rv: String, mut cursor: u64, deadline: tokio::time::Instant) {
        let prebuilt = self.shared.inner.lock().unwrap().prebuilt.clone();
        if let Some((_, stream)) = prebuilt.filter(|(from, _)| *from == rv) {
            return self.send_prebuilt(stream).await;
        }
        match self.fault {
            Some(Fault::EmptyWatch) => return,
            Some(Fault::FrozenWatch) => {
                tokio::select! {
                    _ = self.kill.changed() => {}
                    _ = tokio::time::sleep_until(deadline) => {}
                }
                return;
            }
            _ => {}
        }
        if cursor < self.shared.inner.lock().unwrap().compacted {
            let line = format!(
                "{{\"type\":\"ERROR\",\"object\":{}}}\n",
                status_body(
                    410,
                    "Expired",
                    "The resourceVersion for the provided watch is too old."
                )
            );
            let _ = self.tx.send_data(Bytes::from(line)).await;
            return;
        }
        loop {
            // A watch closed by close_watches() sends nothing more, even if changes raced in.
            if self.kill.has_changed().unwrap_or(true) {
                return;
            }
            let pending = self.pending(&mut cursor);
            match self.send(&pending).await {
                Sent::More => {}
                Sent::Over => return,
                Sent::Cut => return self.tx.abort(std::io::Error::other("injected disconnect")),
            }
            tokio::select! {
                biased;
                _ = self.kill.changed() => return,
                r = self.changed.changed() => if r.is_err() { return },
                _ = tokio::time::sleep_until(deadline) => return,
            }
        }
    }

    /// The benchmark's stream, chunk by chunk.
    async fn send_prebuilt(mut self, chunks: Arc<Vec<Bytes>>) {
        for chunk in chunks.iter() {
            if self.tx.send_data(chunk.clone()).await.is_err() {
                return;
            }
        }
    }

    /// The changes after `cursor` this watch selects (bookmarks always); moves the cursor on.
    fn pending(&self, cursor: &mut u64) -> Vec<Change> {
        let inner = self.shared.inner.lock().unwrap();
        let start = inner.history.partition_point(|c| c.rv <= *cursor);
        if let Some(last) = inner.history.last() {
            *cursor = (*cursor).max(last.rv);
        }
        inner.history[start..]
            .iter()
            .filter(|c| {
                c.kind == "BOOKMARK"
                    || (self.namespace.as_deref().is_none_or(|ns| ns == c.namespace)
                        && selected(&self.selector, &c.line))
            })
            .cloned()
            .collect()
    }

    /// All pending frames in one buffer, cut into chunks at arbitrary points; faults strike at
    /// their frame.
    async fn send(&mut self, pending: &[Change]) -> Sent {
        let mut buf = Vec::new();
        for change in pending {
            match &self.fault {
                Some(Fault::DropMidFrame { after }) if self.sent == *after => {
                    buf.extend_from_slice(&change.line.as_bytes()[..change.line.len() / 2]);
                    send_chunks(&mut self.tx, &mut self.rng, &buf).await;
                    return Sent::Cut;
                }
                Some(Fault::Garbage { after }) if self.sent == *after => {
                    buf.extend_from_slice(
                        b"{\"type\":\"ADDED\",\"object\":{\"kind\":\"Event\" this is not json\n",
                    );
                }
                _ => {}
            }
            buf.extend_from_slice(change.line.as_bytes());
            buf.push(b'\n');
            self.sent += 1;
        }
        match send_chunks(&mut self.tx, &mut self.rng, &buf).await {
            true => Sent::More,
            false => Sent::Over,
        }
    }
}

/// How sending pending frames went.
enum Sent {
    More,
    /// The client left.
    Over,
    /// A fault: the connection is to be cut mid-frame.
    Cut,
}

/// Sends `buf` in chunks of 1–700 bytes (large buffers in 64 KiB chunks). False if the client left.
async fn send_chunks(
    tx: &mut http_body_util::channel::Sender<Bytes, std::io::Error>,
    rng: &mut fastrand::Rng,
    buf: &[u8],
) -> bool {
    let buf = Bytes::copy_from_slice(buf);
    let mut at = 0;
    while at < buf.len() {
        let n = rng.usize(1..=700);
        let end = (at + n).min(buf.len());
        if tx.send_data(buf.slice(at..end)).await.is_err() {
            return false;
        }
        at = end;
    }
    true
}
