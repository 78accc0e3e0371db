//! The Grafana dashboard (loki/grafana-dashboard.json): the Kibana views in LogQL, checked
//! against tables of the dashboard, panel and query fields it uses, each with the page it was
//! read from, and against what the frames hold.

use regex::Regex;
use serde_json::Value as Json;

use super::loki::{METADATA, STREAM_LABELS, at_path};
use super::{json, read, realistic_frames};

const JSON_MODEL: &str = "https://grafana.com/docs/grafana/latest/dashboards/build-dashboards/view-dashboard-json-model/";
const VISUALIZATIONS: &str =
    "https://grafana.com/docs/grafana/latest/panels-visualizations/visualizations/";
const LOKI_QUERY_EDITOR: &str =
    "https://grafana.com/docs/grafana/latest/datasources/loki/query-editor/";
const VARIABLES: &str =
    "https://grafana.com/docs/grafana/latest/dashboards/variables/add-template-variables/";
const LOG_QUERIES: &str = "https://grafana.com/docs/loki/latest/query/log_queries/";
const METRIC_QUERIES: &str = "https://grafana.com/docs/loki/latest/query/metric_queries/";

/// Dashboard, panel and target fields.
const DASHBOARD_FIELDS: (&[&str], &str) = (
    &[
        "title",
        "uid",
        "description",
        "tags",
        "schemaVersion",
        "editable",
        "time",
        "refresh",
        "templating",
        "panels",
    ],
    JSON_MODEL,
);
const PANEL_FIELDS: (&[&str], &str) = (
    &[
        "id",
        "type",
        "title",
        "gridPos",
        "datasource",
        "targets",
        "fieldConfig",
        "options",
    ],
    JSON_MODEL,
);
/// Panel types, and the query type each needs: a range for graphs and logs, an instant for a
/// single value per series.
const PANEL_TYPES: (&[(&str, &str)], &str) = (
    &[
        ("timeseries", "range"),
        ("stat", "instant"),
        ("bargauge", "instant"),
        ("table", "instant"),
        ("logs", "range"),
    ],
    VISUALIZATIONS,
);
const TARGET_FIELDS: (&[&str], &str) = (
    &["refId", "datasource", "expr", "queryType", "legendFormat"],
    LOKI_QUERY_EDITOR,
);
const VARIABLE_TYPES: (&[&str], &str) = (&["datasource", "query"], VARIABLES);
/// Grafana's global variables used in range selectors.
const GLOBALS: (&[&str], &str) = (
    &["__interval", "__range"],
    "https://grafana.com/docs/grafana/latest/dashboards/variables/add-template-variables/#global-variables",
);
/// LogQL functions and aggregations (`max_over_time` over an `unwrap`ped label: "Unwrapped
/// range aggregations"; `offset`, binary and set operators `-`, `>=`, `or`, `unless`: the same
/// page and https://grafana.com/docs/loki/latest/query/#binary-operators).
const LOGQL: (&[&str], &str) = (
    &["count_over_time", "max_over_time", "sum", "topk"],
    METRIC_QUERIES,
);
/// Pipeline stages (`__error__=""` is a label filter dropping what `unwrap` could not read).
const LOGQL_STAGES: (&[&str], &str) = (
    &["json", "line_format", "label_format", "unwrap", "__error__"],
    LOG_QUERIES,
);

/// The occurrence rule in LogQL, per Event (its `uid`) in each window: the growth of its count
/// (`series.count`, else `count`, else 1: `unwrap`ped) over its newest count in the hour before
/// (an Event's lifetime; a decrease is dropped), or its whole count when the hour before holds
/// none of its frames. Every "how often" panel is built so.
fn counts_occurrences(expr: &str) -> bool {
    let unwrap = r#"| json c="object.count", s="object.series.count" | label_format n="{{ or .s .c 1 }}" | unwrap n | __error__="""#;
    expr.matches(unwrap).count() == 4
        && expr.contains("[1h] offset $__")
        && expr.contains(") >= 0) or (")
        && expr.contains(" unless max_over_time(")
        && expr.matches("by (uid").count() == 4
        && !expr.contains("count_over_time")
}

#[test]
fn the_grafana_dashboard_has_the_kibana_views_in_documented_fields() {
    let dashboard = json("loki/grafana-dashboard.json");
    for k in dashboard.as_object().unwrap().keys() {
        assert!(
            DASHBOARD_FIELDS.0.contains(&k.as_str()),
            "{k}: {}",
            DASHBOARD_FIELDS.1
        );
    }
    // The same views, in the same order, as the Kibana dashboard's panels.
    let kibana: Vec<Json> = read("kibana/kube-event-logger.ndjson")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kibana_dashboard = kibana.iter().find(|o| o["type"] == "dashboard").unwrap();
    let kibana_titles: Vec<&Json> = kibana_dashboard["references"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"].as_str().unwrap().starts_with("panel_"))
        .map(|r| &kibana.iter().find(|o| o["id"] == r["id"]).unwrap()["attributes"]["title"])
        .collect();
    let panels = dashboard["panels"].as_array().unwrap();
    let titles: Vec<&Json> = panels.iter().map(|p| &p["title"]).collect();
    assert_eq!(titles, kibana_titles);
    for p in panels {
        for k in p.as_object().unwrap().keys() {
            assert!(
                PANEL_FIELDS.0.contains(&k.as_str()),
                "{k}: {}",
                PANEL_FIELDS.1
            );
        }
        let ty = p["type"].as_str().unwrap();
        let (_, query_type) = PANEL_TYPES
            .0
            .iter()
            .find(|(t, _)| *t == ty)
            .unwrap_or_else(|| panic!("{ty}: {}", PANEL_TYPES.1));
        let targets = p["targets"].as_array().unwrap();
        assert_eq!(targets.len(), 1, "{}", p["title"]);
        for t in targets {
            for k in t.as_object().unwrap().keys() {
                assert!(
                    TARGET_FIELDS.0.contains(&k.as_str()),
                    "{k}: {}",
                    TARGET_FIELDS.1
                );
            }
            assert_eq!(t["queryType"], *query_type, "{}", p["title"]);
            assert_eq!(t["datasource"]["type"], "loki");
        }
    }
    for v in dashboard["templating"]["list"].as_array().unwrap() {
        let ty = v["type"].as_str().unwrap();
        assert!(VARIABLE_TYPES.0.contains(&ty), "{ty}: {}", VARIABLE_TYPES.1);
    }
}

/// What one LogQL query selects, extracts and uses.
struct Query {
    matchers: Vec<(String, String)>,
    /// The `label!="value"` matchers among them.
    excluded: Vec<(String, String)>,
    extracted: Vec<(String, String)>,
    used: Vec<String>,
    variables: Vec<String>,
    functions: Vec<String>,
    stages: Vec<String>,
}

fn logql(expr: &str) -> Query {
    let captures = |re: &str, text: &str, group: usize| -> Vec<String> {
        Regex::new(re)
            .unwrap()
            .captures_iter(text)
            .map(|c| c[group].to_owned())
            .collect()
    };
    // Templates first (`{{ .x }}` would look like selectors), then the rest.
    let templates = captures(r#"line_format "([^"]*)""#, expr, 1);
    let rest = Regex::new(r#"line_format "[^"]*""#)
        .unwrap()
        .replace_all(expr, "line_format")
        .into_owned();
    let selectors = captures(r"\{([^{}]*)\}", &rest, 1);
    let pairs = |text: &str, re: &str| -> Vec<(String, String)> {
        Regex::new(re)
            .unwrap()
            .captures_iter(text)
            .map(|c| (c[1].to_owned(), c[2].to_owned()))
            .collect()
    };
    let matchers = selectors
        .iter()
        .flat_map(|s| pairs(s, r#"([a-z_]+)\s*(?:=~|!=|!~|=)\s*"([^"]*)""#))
        .collect();
    let excluded = selectors
        .iter()
        .flat_map(|s| pairs(s, r#"([a-z_]+)\s*!=\s*"([^"]*)""#))
        .collect();
    let extracted = captures(r#"\|\s*json\s+([^|]*)"#, &rest, 1)
        .iter()
        .flat_map(|s| pairs(s, r#"([a-z_]+)="([^"]*)""#))
        .collect();
    let mut used: Vec<String> = captures(r"by \(([^)]*)\)", &rest, 1)
        .iter()
        .flat_map(|b| {
            b.split(',')
                .map(|l| l.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    for t in &templates {
        used.extend(captures(r"\.([a-zA-Z_]+)", t, 1));
    }
    Query {
        matchers,
        excluded,
        extracted,
        used,
        variables: captures(r"\$(\w+)", &rest, 1),
        functions: captures(r"([a-z_]+)\s*\(", &rest, 1),
        stages: captures(r"\|\s*([a-z_]+)", &rest, 1),
    }
}

#[test]
fn the_grafana_queries_select_by_stream_labels_and_read_only_what_the_frames_hold() {
    let dashboard = json("loki/grafana-dashboard.json");
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    let frames = realistic_frames();
    let mut queries: Vec<(String, String)> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let t = &p["targets"][0];
            let mut e = t["expr"].as_str().unwrap().to_owned();
            // legendFormat `{{x}}` names a label of the result, like `by`.
            for name in logql_legend(t["legendFormat"].as_str().unwrap_or("")) {
                e.push_str(&format!(" by ({name})"));
            }
            (p["title"].as_str().unwrap().to_owned(), e)
        })
        .collect();
    for v in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["query"].as_str().filter(|_| v["type"] == "query") {
            queries.push((format!("variable {}", v["name"]), q.to_owned()));
        }
    }
    for (title, expr) in &queries {
        let q = logql(expr);
        assert!(
            !q.matchers.is_empty() || title.starts_with("variable"),
            "{title}"
        );
        for (label, _) in &q.matchers {
            assert!(
                STREAM_LABELS.contains(&label.as_str()),
                "{title}: {label} is no stream label"
            );
        }
        if !title.starts_with("variable") {
            assert!(
                q.matchers
                    .contains(&("job".into(), "kube-event-logger".into())),
                "{title}"
            );
        }
        // A view that counts counts occurrences: an expiring Event's DELETED frame repeats its
        // last state and is not one.
        if q.functions.iter().any(|f| f == "count_over_time") {
            assert!(
                q.excluded
                    .contains(&("watch_type".into(), "DELETED".into())),
                "{title} counts DELETED frames: {expr}"
            );
        }
        for (name, path) in &q.extracted {
            assert!(
                !STREAM_LABELS.contains(&name.as_str()) && !METADATA.0.contains(&name.as_str()),
                "{title}: {name} would be renamed {name}_extracted ({LOG_QUERIES})"
            );
            assert!(
                frames.iter().any(|f| at_path(f, path).is_some()),
                "{title}: {path} is in no realistic frame"
            );
        }
        for name in &q.used {
            let known = STREAM_LABELS.contains(&name.as_str())
                || METADATA.0.contains(&name.as_str())
                || q.extracted.iter().any(|(n, _)| n == name);
            assert!(
                known,
                "{title}: {name} is neither a label, metadata nor extracted"
            );
        }
        for v in &q.variables {
            assert!(
                variables.contains(&v.as_str()) || GLOBALS.0.contains(&v.as_str()),
                "{title}: ${v} ({}, {})",
                VARIABLES,
                GLOBALS.1
            );
        }
        for f in &q.functions {
            // `by (…)` groups and `or (…)` is a set operator, not functions.
            let known =
                LOGQL.0.contains(&f.as_str()) || ["by", "or", "label_values"].contains(&f.as_str());
            assert!(known, "{title}: {f}: {}", LOGQL.1);
        }
        for s in &q.stages {
            assert!(
                LOGQL_STAGES.0.contains(&s.as_str()),
                "{title}: | {s}: {}",
                LOGQL_STAGES.1
            );
        }
    }
}

fn logql_legend(format: &str) -> Vec<String> {
    Regex::new(r"\{\{\s*([a-zA-Z_]+)\s*\}\}")
        .unwrap()
        .captures_iter(format)
        .map(|c| c[1].to_owned())
        .collect()
}

#[test]
fn the_logql_reader_sees_what_a_bad_query_gets_wrong() {
    let q = logql(
        r#"topk(5, sum by (reason, pod) (count_over_time({job="kube-event-logger", pod=~"$p"} | json msg="object.message" | line_format "{{ .msg }} {{.nope}}" [$__range])))"#,
    );
    assert_eq!(
        q.matchers,
        [
            ("job".to_owned(), "kube-event-logger".to_owned()),
            ("pod".to_owned(), "$p".to_owned())
        ]
    );
    assert_eq!(
        q.extracted,
        [("msg".to_owned(), "object.message".to_owned())]
    );
    assert_eq!(q.used, ["reason", "pod", "msg", "nope"]);
    assert_eq!(q.variables, ["p", "__range"]);
    assert_eq!(q.functions, ["topk", "by", "count_over_time"]);
    assert_eq!(q.stages, ["json", "line_format"]);
}

/// Every panel that answers "how often" counts occurrences, not log lines, and says so in its
/// title; only the log panel lists the frames.
#[test]
fn every_how_often_panel_counts_occurrences_by_the_rule() {
    let dashboard = json("loki/grafana-dashboard.json");
    for p in dashboard["panels"].as_array().unwrap() {
        let title = p["title"].as_str().unwrap();
        let expr = p["targets"][0]["expr"].as_str().unwrap();
        if p["type"] == "logs" {
            continue;
        }
        assert!(counts_occurrences(expr), "{title}: {expr}");
        assert!(title.to_lowercase().contains("occurrences"), "{title}");
    }
}
