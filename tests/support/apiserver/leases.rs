//! Leases (coordination.k8s.io/v1): GET, POST and PUT as kube-apiserver answers them.

use super::*;

pub(super) const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/";

/// GET, POST (create) and PUT (replace, with the resourceVersion precondition) on Leases, as
/// kube-apiserver answers them: 404 before creation, 409 AlreadyExists on a second create, 409
/// Conflict on a stale resourceVersion.
pub(super) async fn lease_request(shared: &Shared, req: Request<Incoming>) -> Response<Body> {
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

pub(super) fn not_found(name: &str) -> Response<Body> {
    full(
        StatusCode::NOT_FOUND,
        status_body(
            404,
            "NotFound",
            &format!("leases.coordination.k8s.io \"{name}\" not found"),
        ),
    )
}
