//! Kibana and OpenSearch Dashboards saved objects against the template: only mapped fields,
//! references that resolve, each product's own format.

use super::*;

/// The saved objects of an ndjson export, in file order.
fn objects(path: &str) -> Vec<Value> {
    read(path)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// OpenSearch Dashboards' cluster control (an input control visualization on the dashboard).
const OSD_CLUSTER_CONTROL: &str = "kube-event-logger-cluster";

/// The fields a Kibana dashboard's control group filters on (its options list controls).
fn dashboard_controls(dashboard: &Value) -> Vec<String> {
    let Some(panels) = dashboard["attributes"]["controlGroupInput"]["panelsJSON"].as_str() else {
        return Vec::new();
    };
    let panels: Value = serde_json::from_str(panels).unwrap();
    panels
        .as_object()
        .unwrap()
        .values()
        .filter(|p| p["type"] == "optionsListControl")
        .map(|p| {
            p["explicitInput"]["fieldName"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Several clusters can share one Elasticsearch or OpenSearch: each dashboard has a control on
/// the cluster's name, as the Grafana dashboard has its `cluster` variable.
#[test]
fn every_dashboard_can_be_narrowed_to_one_cluster() {
    let kibana = objects("kibana/kube-event-logger.ndjson");
    let dashboard = kibana.iter().find(|o| o["type"] == "dashboard").unwrap();
    assert_eq!(dashboard_controls(dashboard), ["cluster.name"]);
    let reference = dashboard["references"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "controlGroup_cluster:optionsListDataView")
        .expect("the control names its data view");
    assert_eq!(reference["id"], "kube-event-logger");

    let osd = objects("opensearch-dashboards/kube-event-logger.ndjson");
    let control = osd.iter().find(|o| o["id"] == OSD_CLUSTER_CONTROL).unwrap();
    let vis: Value =
        serde_json::from_str(control["attributes"]["visState"].as_str().unwrap()).unwrap();
    assert_eq!(vis["type"], "input_control_vis");
    assert_eq!(vis["params"]["controls"][0]["fieldName"], "cluster.name");
    let dashboard = osd.iter().find(|o| o["type"] == "dashboard").unwrap();
    assert!(
        dashboard["references"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == OSD_CLUSTER_CONTROL),
        "the control is on the dashboard"
    );

    let grafana = json("loki/grafana-dashboard.json");
    assert!(
        grafana["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "cluster")
    );
}

/// Every Kibana and OpenSearch Dashboards chart answers "how often" by summing each document's
/// occurrences (the occurrence rule: the Logstash pipeline's `[watch][occurrences]`), not by
/// counting documents, and says so in its title and description.
#[test]
fn every_chart_sums_occurrences_not_documents() {
    for path in [
        "kibana/kube-event-logger.ndjson",
        "opensearch-dashboards/kube-event-logger.ndjson",
    ] {
        let charts: Vec<Value> = objects(path)
            .into_iter()
            .filter(|o| o["type"] == "visualization" && o["id"] != OSD_CLUSTER_CONTROL)
            .collect();
        assert_eq!(charts.len(), 5, "{path}");
        for chart in charts {
            let a = &chart["attributes"];
            let vis: Value = serde_json::from_str(a["visState"].as_str().unwrap()).unwrap();
            let metrics: Vec<&Value> = vis["aggs"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|agg| agg["schema"] == "metric")
                .collect();
            assert_eq!(metrics.len(), 1, "{path}: {}", a["title"]);
            assert_eq!(metrics[0]["type"], "sum", "{path}: {}", a["title"]);
            assert_eq!(metrics[0]["params"]["field"], "watch.occurrences");
            assert!(
                a["title"]
                    .as_str()
                    .unwrap()
                    .to_lowercase()
                    .contains("occurrences")
            );
            assert!(
                a["description"]
                    .as_str()
                    .unwrap()
                    .contains("occurrence rule")
            );
        }
    }
}

/// The KQL clause every view that counts has.
const NOT_DELETED: &str = "not watch.type : \"DELETED\"";

#[test]
fn kibana_objects_reference_only_mapped_fields_and_each_other() {
    saved_objects_reference_only_mapped_fields_and_each_other(
        "kibana/kube-event-logger.ndjson",
        &es_mappings(),
    );
}

#[test]
fn opensearch_dashboards_objects_reference_only_mapped_fields_and_each_other() {
    let mappings =
        json("es-templates/opensearch/component-template-mappings.json")["template"]["mappings"]
            .clone();
    saved_objects_reference_only_mapped_fields_and_each_other(
        "opensearch-dashboards/kube-event-logger.ndjson",
        &mappings,
    );
}

/// The newest migration of each saved-object type in OpenSearch Dashboards 2.x: an object
/// marked newer is refused at import ("a more recent version"), which is why Kibana 8 exports do
/// not load. Read from OpenSearch-Dashboards' sources: visualization_migrations.ts (7.10.0),
/// dashboard_migrations.ts (7.9.3), search_migrations.ts (7.9.3), index_pattern migrations
/// (7.6.0); the same versions the opensearch-migrations dashboardsSanitizer converts Kibana
/// objects down to.
pub(crate) const OSD_MIGRATIONS: [(&str, &str); 4] = [
    ("index-pattern", "7.6.0"),
    ("search", "7.9.3"),
    ("visualization", "7.10.0"),
    ("dashboard", "7.9.3"),
];

#[test]
fn opensearch_dashboards_objects_are_in_its_format_and_mirror_the_kibana_ones() {
    // OpenSearch Dashboards' cluster control is a visualization of its own (input controls);
    // Kibana's is in the dashboard's control group: the rest mirror each other.
    let osd: Vec<Value> = objects("opensearch-dashboards/kube-event-logger.ndjson")
        .into_iter()
        .filter(|o| o["id"] != OSD_CLUSTER_CONTROL)
        .collect();
    let kibana = objects("kibana/kube-event-logger.ndjson");
    assert_eq!(osd.len(), kibana.len());
    for (o, k) in osd.iter().zip(&kibana) {
        let ty = o["type"].as_str().unwrap();
        assert_eq!((&o["type"], &o["id"]), (&k["type"], &k["id"]));
        assert_eq!(o["attributes"]["title"], k["attributes"]["title"]);
        assert!(o.get("coreMigrationVersion").is_none() && o.get("typeMigrationVersion").is_none());
        let (_, newest) = OSD_MIGRATIONS.iter().find(|(t, _)| *t == ty).unwrap();
        assert_eq!(o["migrationVersion"][ty], *newest, "{}", o["id"]);
        if ty == "dashboard" {
            let without_controls = |refs: &Value| -> Vec<Value> {
                refs.as_array()
                    .unwrap()
                    .iter()
                    .filter(|r| {
                        r["id"] != OSD_CLUSTER_CONTROL
                            && !r["name"].as_str().unwrap().starts_with("controlGroup_")
                    })
                    .map(|r| serde_json::json!({"type": r["type"], "id": r["id"]}))
                    .collect()
            };
            assert_eq!(
                without_controls(&o["references"]),
                without_controls(&k["references"])
            );
        } else {
            assert_eq!(o["references"], k["references"]);
        }
        if ty == "visualization" {
            let vis = |x: &Value| -> Value {
                serde_json::from_str(x["attributes"]["visState"].as_str().unwrap()).unwrap()
            };
            assert_eq!(vis(o)["aggs"], vis(k)["aggs"], "the same aggregations");
        }
        if ty == "dashboard" {
            let panels: Vec<Value> =
                serde_json::from_str(o["attributes"]["panelsJSON"].as_str().unwrap()).unwrap();
            for p in &panels {
                assert_eq!(p["version"], "7.10.2");
                assert!(
                    p.get("type").is_none(),
                    "7.x panels keep their type in references"
                );
            }
            let options: Value =
                serde_json::from_str(o["attributes"]["optionsJSON"].as_str().unwrap()).unwrap();
            assert!(options.get("syncColors").is_none(), "a Kibana 8 option");
        }
    }
}

pub(crate) fn saved_objects_reference_only_mapped_fields_and_each_other(
    path: &str,
    mappings: &Value,
) {
    let objects: Vec<Value> = objects(path);
    let ids: Vec<(&str, &str)> = objects
        .iter()
        .map(|o| (o["type"].as_str().unwrap(), o["id"].as_str().unwrap()))
        .collect();
    let mut fields: Vec<(String, bool)> = Vec::new(); // (field, must be aggregatable)
    for o in &objects {
        for r in o["references"].as_array().unwrap() {
            let target = (r["type"].as_str().unwrap(), r["id"].as_str().unwrap());
            assert!(
                ids.contains(&target),
                "{} refers to missing {target:?}",
                o["id"]
            );
        }
        let a = &o["attributes"];
        match o["type"].as_str().unwrap() {
            "index-pattern" => {
                assert_eq!(a["timeFieldName"], "@timestamp");
                assert!(glob_match(
                    a["title"].as_str().unwrap(),
                    "logs-kube_event_logger-default"
                ));
            }
            "search" => {
                for c in a["columns"].as_array().unwrap() {
                    fields.push((c.as_str().unwrap().to_string(), false));
                }
                fields.push((a["sort"][0][0].as_str().unwrap().to_string(), true));
            }
            "visualization" => {
                let vis: Value = serde_json::from_str(a["visState"].as_str().unwrap()).unwrap();
                for control in vis["params"]["controls"].as_array().into_iter().flatten() {
                    fields.push((control["fieldName"].as_str().unwrap().to_string(), true));
                }
                for agg in vis["aggs"].as_array().unwrap() {
                    if let Some(f) = agg["params"]["field"].as_str() {
                        fields.push((f.to_string(), true));
                    }
                }
            }
            "dashboard" => {
                let panels: Vec<Value> =
                    serde_json::from_str(a["panelsJSON"].as_str().unwrap()).unwrap();
                assert!(
                    panels.len() >= 6,
                    "over time, warning count, by namespace, reasons, objects, latest"
                );
                for control in dashboard_controls(o) {
                    fields.push((control, true));
                }
            }
            other => panic!("unexpected object type {other}"),
        }
        if let Some(src) = a["kibanaSavedObjectMeta"]["searchSourceJSON"].as_str() {
            let src: Value = serde_json::from_str(src).unwrap();
            let query = src["query"]["query"].as_str().unwrap_or("");
            for clause in query.split(" and ").filter(|c| c.contains(':')) {
                let field = clause.split(':').next().unwrap().trim();
                let field = field.strip_prefix("not ").unwrap_or(field);
                fields.push((field.to_string(), false));
            }
            // A view counts occurrences: an expiring Event's DELETED frame repeats its last
            // state and is not one (docs/design.md, "The output").
            if o["type"] == "visualization" && o["id"] != OSD_CLUSTER_CONTROL {
                assert!(
                    query.split(" and ").any(|c| c == NOT_DELETED),
                    "{path}: {} counts DELETED frames (query {query:?})",
                    a["title"]
                );
            }
        }
    }
    assert!(fields.len() > 10);
    for (field, aggregatable) in fields {
        let segs: Vec<&str> = field.split('.').collect();
        match resolve(mappings, &segs) {
            Mapped::Leaf(ty) => assert!(
                !aggregatable || matches!(ty, "keyword" | "date" | "long"),
                "{path}: {field} ({ty}) cannot be aggregated"
            ),
            other => panic!("{path} uses {field}, which is {other:?} in the template"),
        }
    }
}
