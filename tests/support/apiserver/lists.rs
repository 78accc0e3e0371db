//! LIST responses: pages with continue tokens at one snapshot (or, when asked, built from live
//! state), expired tokens, and preloaded Events.

use super::*;

pub(super) fn list_response(
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
pub(super) fn live_list_response(
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
