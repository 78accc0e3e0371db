//! The part of a filter the API server can evaluate, as a `fieldSelector`, and the check of a
//! `--field-selector` given as is.

use super::check::Node;
use super::fields::FIELDS;
use super::{Filter, FilterError};

impl Filter {
    /// The part the API server can evaluate as a `fieldSelector`: the equality and inequality
    /// tests on selectable fields that the whole expression requires (top-level `and` terms).
    /// `None` when there is no such part.
    pub fn field_selector(&self) -> Option<String> {
        let terms: Vec<&Node> = match &self.root {
            Node::And(all) => all.iter().collect(),
            one => vec![one],
        };
        let parts: Vec<String> = terms
            .into_iter()
            .filter_map(|n| match n {
                Node::Text { field, eq, value } if selector_safe(value) => FIELDS[*field]
                    .selector
                    .map(|label| format!("{label}{}{value}", if *eq { "=" } else { "!=" })),
                _ => None,
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join(","))
    }

    /// Whether the expression is nothing but a server-side field selector (for `--field-selector`).
    pub fn is_field_selector(&self) -> bool {
        let terms: Vec<&Node> = match &self.root {
            Node::And(all) => all.iter().collect(),
            one => vec![one],
        };
        terms.iter().all(|n| matches!(n, Node::Text { field, value, .. } if FIELDS[*field].selector.is_some() && selector_safe(value)))
    }
}

/// Values the API server's selector syntax carries without escaping.
fn selector_safe(v: &str) -> bool {
    !v.contains([',', '=', '!', '\\'])
}

/// Checks a `--field-selector`: kubectl syntax on the fields the API server supports for Events.
/// Returns it in canonical form.
pub fn check_field_selector(sel: &str) -> Result<String, FilterError> {
    let f = Filter::parse(sel).map_err(|mut e| {
        // The filter language knows more operators than a field selector does.
        if e.message.starts_with("expected an operator") {
            e.message = e.message.replacen(
                "an operator (=, ==, !=, =~, !~, >, >=, <, <=) or `in`",
                "`=`, `==` or `!=`",
                1,
            );
            e.help = Some(
                "a field selector compares with =, == and != only; use --filter for the others"
                    .into(),
            );
        }
        e
    })?;
    if !f.is_field_selector() {
        let supported: Vec<&str> = FIELDS.iter().filter_map(|f| f.selector).collect();
        return Err(FilterError {
            expr: sel.to_string(),
            start: 0,
            end: sel.len(),
            message: "a field selector is `field=value` / `field!=value` terms joined by `,`"
                .into(),
            help: Some(format!(
                "fields the API server supports for Events: {}; use --filter for anything else",
                supported.join(", ")
            )),
        });
    }
    Ok(f.field_selector().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    fn now() -> Timestamp {
        "2026-11-22T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn push_down_takes_only_required_selectable_equalities() {
        let sel = |e: &str| Filter::parse_at(e, now()).unwrap().field_selector();
        assert_eq!(
            sel("type=Warning,involvedObject.kind!=Pod").as_deref(),
            Some("type=Warning,involvedObject.kind!=Pod")
        );
        assert_eq!(
            sel("kind=Pod and count>3 and message=~x").as_deref(),
            Some("involvedObject.kind=Pod")
        );
        assert_eq!(
            sel("namespace==a,component=kubelet").as_deref(),
            Some("metadata.namespace=a,source=kubelet")
        );
        assert_eq!(
            sel("type=Warning or reason=BackOff"),
            None,
            "an `or` cannot be pushed down"
        );
        assert_eq!(sel("not type=Warning"), None);
        assert_eq!(
            sel("message=x,host=h,frame.type=ADDED"),
            None,
            "not selectable"
        );
        assert_eq!(
            sel("reason=\"a,b\""),
            None,
            "values needing escapes stay local"
        );
    }

    #[test]
    fn field_selector_errors_name_only_field_selector_operators() {
        let e = check_field_selector("type~Warning").unwrap_err();
        assert!(e.message.contains("expected `=`, `==` or `!=`"), "{e}");
        assert!(!e.to_string().contains("=~"), "{e}");
    }

    #[test]
    fn field_selectors_are_checked() {
        assert_eq!(
            check_field_selector("type==Warning,reason!=X").unwrap(),
            "type=Warning,reason!=X"
        );
        let err = check_field_selector("message=x").unwrap_err();
        assert!(err.help.unwrap().contains("involvedObject.kind"));
        assert!(check_field_selector("type=Warning or type=Normal").is_err());
        assert!(
            check_field_selector("typo=Warning")
                .unwrap_err()
                .to_string()
                .contains("did you mean `type`?")
        );
    }
}
