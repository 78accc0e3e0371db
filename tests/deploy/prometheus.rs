//! deploy/prometheus: the alert rules (promtool, and the same groups for the Operator), the
//! PodMonitor that makes the Operator scrape the pods, and the selectors the docs tell the
//! operator to set, checked with the Operator's own selection rules.

use std::path::Path;

use serde_json::Value;

use super::{find, render, tool};

fn read_yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Runs promtool in `deploy/prometheus`.
fn promtool(args: &[&str]) -> Option<std::process::Output> {
    tool(
        "promtool",
        args,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus"),
    )
}

#[test]
fn the_alert_rules_pass_promtool_and_the_prometheus_rule_carries_the_same_groups() {
    let plain = read_yaml("deploy/prometheus/kube-event-logger.rules.yml");
    let operator = read_yaml("deploy/prometheus/prometheusrule.yaml");
    assert_eq!(operator["kind"], "PrometheusRule");
    assert_eq!(operator["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(operator["spec"]["groups"], plain["groups"]);
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let deploy = std::fs::read_to_string(docs.join("deploy.md")).unwrap();
    let guide = std::fs::read_to_string(docs.join("guide.md")).unwrap();
    let alerts_section = deploy
        .split("\n## Alerts\n")
        .nth(1)
        .expect("a docs/deploy.md section \"Alerts\"")
        .split("\n## ")
        .next()
        .unwrap();
    let metrics_table = guide
        .split("\n### Metrics\n")
        .nth(1)
        .expect("a docs/guide.md metrics table")
        .split("\n\n")
        .find(|block| block.starts_with("| metric |"))
        .unwrap();
    let alerting = std::fs::read_to_string(docs.join("alerting.md")).unwrap();
    let groups = plain["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "the logger's health, and event patterns");
    for (group, page) in groups.iter().zip([alerts_section, &alerting[..]]) {
        for rule in group["rules"].as_array().unwrap() {
            let name = rule["alert"].as_str().unwrap();
            assert!(
                page.lines()
                    .any(|l| l.starts_with(&format!("| `{name}` |"))),
                "the docs have no runbook line for {name}"
            );
        }
    }
    for rule in groups.iter().flat_map(|g| g["rules"].as_array().unwrap()) {
        let name = rule["alert"].as_str().unwrap();
        let expr = rule["expr"].as_str().unwrap();
        for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("kube_event_logger_") {
                assert!(
                    metrics_table.contains(&format!("`{word}")),
                    "{name} uses {word}, which the daemon does not export"
                );
            }
        }
    }
    let Some(checked) = promtool(&["check", "rules", "kube-event-logger.rules.yml"]) else {
        return;
    };
    assert!(
        checked.status.success(),
        "promtool check rules:\n{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    let tested = promtool(&["test", "rules", "rules.test.yml"]).unwrap();
    assert!(
        tested.status.success(),
        "promtool test rules:\n{}{}",
        String::from_utf8_lossy(&tested.stdout),
        String::from_utf8_lossy(&tested.stderr)
    );
}

/// A label selector as the Prometheus Operator reads it: `None` is a null selector.
fn matches(selector: Option<&Value>, labels: &Value) -> bool {
    let Some(selector) = selector else {
        return false;
    };
    let wanted = selector["matchLabels"].as_object();
    let expressions = selector["matchExpressions"].as_array();
    assert!(expressions.is_none(), "the check reads matchLabels only");
    wanted
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v))
}

/// Whether a Prometheus in `prom_namespace` with `spec` loads an object of `kind`, following the
/// operator's rules: a null label selector matches no object; a null namespace selector matches
/// the Prometheus' own namespace only.
fn operator_selects(spec: &Value, prom_namespace: &str, object: &Value) -> bool {
    let (selector, namespace_selector) = match object["kind"].as_str().unwrap() {
        "PodMonitor" => ("podMonitorSelector", "podMonitorNamespaceSelector"),
        "PrometheusRule" => ("ruleSelector", "ruleNamespaceSelector"),
        other => panic!("{other}"),
    };
    let ns = object["metadata"]["namespace"].as_str().unwrap();
    // Namespaces carry their name as a label (kubernetes.io/metadata.name, Kubernetes ≥ 1.21).
    let ns_labels = serde_json::json!({ "kubernetes.io/metadata.name": ns });
    let namespace_ok = match spec.get(namespace_selector).filter(|v| !v.is_null()) {
        None => ns == prom_namespace,
        Some(sel) => matches(Some(sel), &ns_labels),
    };
    let labels = &object["metadata"]["labels"];
    namespace_ok && matches(spec.get(selector).filter(|v| !v.is_null()), labels)
}

#[test]
fn the_pod_monitor_scrapes_the_metrics_port_of_the_statefulset_pods() {
    let monitor = read_yaml("deploy/prometheus/podmonitor.yaml");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["kind"], "PodMonitor");
    assert_eq!(monitor["metadata"]["namespace"], "kube-system");
    let Some(objects) = render("deploy/base") else {
        return;
    };
    let set = find(&objects, "StatefulSet", "kube-event-logger");
    let pod_labels = &set["spec"]["template"]["metadata"]["labels"];
    assert!(
        matches(Some(&monitor["spec"]["selector"]), pod_labels),
        "the PodMonitor's selector does not select the pods ({pod_labels})"
    );
    let endpoint = &monitor["spec"]["podMetricsEndpoints"][0];
    assert_eq!(endpoint["path"], "/metrics");
    let container = &set["spec"]["template"]["spec"]["containers"][0];
    let port = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == endpoint["port"])
        .expect("the endpoint names a container port");
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let http = args
        .iter()
        .find_map(|a| a.strip_prefix("--http-addr="))
        .unwrap_or("0.0.0.0:8080");
    assert!(
        http.ends_with(&format!(":{}", port["containerPort"])),
        "{http} vs {port}"
    );
    // The PodMonitor and the PrometheusRule carry the same labels: one selector fits both.
    let rule = read_yaml("deploy/prometheus/prometheusrule.yaml");
    assert_eq!(monitor["metadata"]["labels"], rule["metadata"]["labels"]);
}

#[test]
fn a_prometheus_set_up_as_the_docs_say_loads_the_pod_monitor_and_the_rules() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/deploy.md"))
            .unwrap();
    let block = docs
        .split_once("<!-- prometheus-selectors")
        .and_then(|(_, rest)| rest.split_once("```yaml\n"))
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("docs/deploy.md shows the selectors")
        .0;
    let prometheus: Value = serde_saphyr::from_str(block).unwrap();
    let spec = &prometheus["spec"];
    let monitor = read_yaml("deploy/prometheus/podmonitor.yaml");
    let rule = read_yaml("deploy/prometheus/prometheusrule.yaml");
    for object in [&monitor, &rule] {
        // A Prometheus elsewhere (its own namespace, as kube-prometheus-stack installs it).
        assert!(
            operator_selects(spec, "monitoring", object),
            "{} not selected",
            object["kind"]
        );
        // The operator's defaults load neither: the docs' warning is real.
        assert!(!operator_selects(
            &serde_json::json!({}),
            "monitoring",
            object
        ));
        assert!(!operator_selects(
            &serde_json::json!({"podMonitorSelector": {}, "ruleSelector": {}}),
            "monitoring",
            object
        ));
        assert!(operator_selects(
            &serde_json::json!({"podMonitorSelector": {}, "ruleSelector": {}}),
            "kube-system",
            object
        ));
    }
}

#[test]
fn the_alertmanager_routing_example_is_a_valid_configuration() {
    let page =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/alerting.md"))
            .unwrap();
    let config = page
        .split("### Routing them with Alertmanager")
        .nth(1)
        .and_then(|s| s.split("```yaml\n").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("docs/alerting.md shows an alertmanager.yml");
    // Every event-pattern alert is routed somewhere other than the default receiver.
    let rules = read_yaml("deploy/prometheus/kube-event-logger.rules.yml");
    for rule in rules["groups"][1]["rules"].as_array().unwrap() {
        let name = rule["alert"].as_str().unwrap();
        let short = name.trim_start_matches("KubeEvent");
        assert!(config.contains(short), "{name} is not routed");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alertmanager.yml");
    std::fs::write(&file, config).unwrap();
    for url in ["slack-workloads-url", "slack-platform-url"] {
        std::fs::write(dir.path().join(url), "https://hooks.slack.invalid/x\n").unwrap();
    }
    let config = config.replace("/etc/alertmanager/", &format!("{}/", dir.path().display()));
    std::fs::write(&file, config).unwrap();
    let Some(out) = tool(
        "amtool",
        &["check-config", file.to_str().unwrap()],
        dir.path(),
    ) else {
        return;
    };
    assert!(
        out.status.success(),
        "amtool check-config:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
