//! Realistic core/v1 Event objects in the API server's wire form: compact, `kind` and
//! `apiVersion` first, Go's `\u003c` `\u003e` `\u0026` escapes, managedFields, non-ASCII text
//! and escaped quotes (~1.3 KB each).

/// A JSON string literal as Go's encoder writes it.
pub fn go_string(s: &str) -> String {
    serde_json::to_string(s)
        .unwrap()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// The `n`th of a varied stream of Event objects for the benchmarks: 40 namespaces, 997
/// names, `reasons` in turn, one in three a Warning.
pub fn varied_object(n: u64, reasons: &[&str]) -> String {
    let reason = reasons[(n % reasons.len() as u64) as usize];
    let mut object = event_object(
        &format!("team-{}", n % 40),
        &format!("app-{}.17a{n:013x}", n % 997),
        1000 + n,
        1 + n % 13,
    );
    if reason != "BackOff" {
        object = object.replace(r#""reason":"BackOff""#, &format!(r#""reason":"{reason}""#));
    }
    if !n.is_multiple_of(3) {
        object = object.replace(r#""type":"Warning""#, r#""type":"Normal""#);
    }
    object
}

/// The Event object (as a watch frame carries it) for one occurrence.
pub fn event_object(namespace: &str, name: &str, rv: u64, count: u64) -> String {
    let second = count % 60;
    let uid = uid_for(namespace, name);
    let message = go_string(&format!(
        "Back-off restarting failed container app in pod {name}_{namespace}(7c9f) — «ошибка» <exit code 137> & \"OOMKilled\" après {count} tentatives"
    ));
    format!(
        concat!(
            r#"{{"kind":"Event","apiVersion":"v1","metadata":{{"name":{name},"namespace":{ns},"uid":"{uid}","resourceVersion":"{rv}","creationTimestamp":"2026-11-22T10:00:00Z","#,
            r#""managedFields":[{{"manager":"kubelet","operation":"Update","apiVersion":"v1","time":"2026-11-22T10:00:{second:02}Z","fieldsType":"FieldsV1","fieldsV1":{{"f:count":{{}},"f:firstTimestamp":{{}},"f:involvedObject":{{}},"f:lastTimestamp":{{}},"f:message":{{}},"f:reason":{{}},"f:reportingComponent":{{}},"f:reportingInstance":{{}},"f:source":{{"f:component":{{}},"f:host":{{}}}},"f:type":{{}}}}}}]}},"#,
            r#""involvedObject":{{"kind":"Pod","namespace":{ns},"name":"app-7c9f","uid":"4f22e027-6a03-4ec1-8ce9-83850dd3d431","apiVersion":"v1","resourceVersion":"39702943","fieldPath":"spec.containers{{app}}"}},"#,
            r#""reason":"BackOff","message":{message},"source":{{"component":"kubelet","host":"node-1.example.internal"}},"#,
            r#""firstTimestamp":"2026-11-22T10:00:00Z","lastTimestamp":"2026-11-22T10:00:{second:02}Z","count":{count},"type":"Warning","eventTime":null,"#,
            r#""reportingComponent":"kubelet","reportingInstance":"node-1.example.internal"}}"#
        ),
        name = go_string(name),
        ns = go_string(namespace),
        uid = uid,
        rv = rv,
        second = second,
        message = message,
        count = count,
    )
}

pub fn uid_for(namespace: &str, name: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in namespace.bytes().chain([b'/']).chain(name.bytes()) {
        h = (h ^ b as u64).wrapping_mul(0x100000001b3);
    }
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        (h >> 20) & 0xfff,
        h & 0xffffffffffff
    )
}

/// A watch frame line (no `\n`).
pub fn frame(kind: &str, object: &str) -> String {
    format!(r#"{{"type":"{kind}","object":{object}}}"#)
}

/// The object as a LIST item: without `kind`/`apiVersion`.
pub fn strip_kind(object: &str) -> String {
    let rest = object
        .strip_prefix(r#"{"kind":"Event","apiVersion":"v1","#)
        .expect("objects start with kind and apiVersion");
    format!("{{{rest}")
}

/// Replaces the object's own metadata.resourceVersion (the first one in a frame).
pub fn renumber(line: &str, rv: u64) -> String {
    let key = r#""resourceVersion":""#;
    let start = line.find(key).expect("a resourceVersion") + key.len();
    let end = start + line[start..].find('"').unwrap();
    format!("{}{rv}{}", &line[..start], &line[end..])
}
