//! `fieldSelector` on Events as kube-apiserver supports it: the field labels, parsing, and
//! whether a stored line is selected.

/// A parsed `fieldSelector`: (label, wanted, equal?) terms, all of which must hold.
pub(super) type Selector = Vec<(String, String, bool)>;

/// The field labels kube-apiserver supports for core/v1 Events, and where each reads.
pub(super) fn selector_path(label: &str) -> Option<&'static [&'static str]> {
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

pub(super) fn parse_selector(sel: &str) -> Result<Selector, String> {
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
pub(super) fn selected(selector: &Selector, line: &str) -> bool {
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

pub(super) fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}
