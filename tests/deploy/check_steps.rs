//! The "Check that it works" steps of docs/deploy.md against what deploy/base renders: every
//! object they name exists there, the Lease they read is the one the replicas hold, its holder
//! is a pod's name, and the binary and port are the image's and the container's.

use std::path::Path;

use regex::Regex;
use serde_json::Value;

use super::{daemon_container, find, render};

#[test]
fn the_check_steps_name_what_deploy_base_renders() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/deploy.md"))
            .unwrap();
    let block = docs
        .split_once("<!-- check-steps")
        .and_then(|(_, rest)| rest.split_once("```sh\n"))
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("docs/deploy.md shows the check steps")
        .0;
    let Some(objects) = render("deploy/base") else {
        return;
    };
    let set = find(&objects, "StatefulSet", "kube-event-logger");
    let namespace = set["metadata"]["namespace"].as_str().unwrap();
    for line in block.lines().filter(|l| l.starts_with("kubectl")) {
        assert!(
            line.contains(&format!("-n {namespace}")),
            "{line}: the objects are in {namespace}"
        );
        assert!(!line.contains("deploy/"), "{line}: there is no Deployment");
    }
    // kind/name references: the kinds deploy/base renders, by those names.
    let kinds = [("statefulset", "StatefulSet"), ("service", "Service")];
    let reference = Regex::new(r"\b([a-z]+)/(kube-event-logger[\w-]*)").unwrap();
    let mut named = 0;
    for c in reference.captures_iter(block) {
        let Some((_, kind)) = kinds.iter().find(|(k, _)| *k == &c[1]) else {
            panic!("{}: a kind deploy/base does not render", &c[0]);
        };
        find(&objects, kind, &c[2]);
        named += 1;
    }
    assert!(named > 0, "{block}");
    // After a failover: every replica's file is taken, by a label its pods carry, and read
    // together.
    let selector = Regex::new(r"get pods -l (\S+)=(\S+)").unwrap();
    let c = selector
        .captures(block)
        .expect("the steps take every replica's file after a failover");
    assert_eq!(
        set["spec"]["template"]["metadata"]["labels"][&c[1]],
        Value::from(&c[2]),
        "the pods carry {}={}",
        &c[1],
        &c[2]
    );
    assert!(block.contains("tail --all -o json"), "{block}");
    assert!(block.contains("kube-event-logger summary"), "{block}");
    // The Lease read is the one the replicas hold: the name the Role lets them update.
    let lease = Regex::new(r"get lease (\S+)")
        .unwrap()
        .captures(block)
        .unwrap()[1]
        .to_owned();
    let role = find(&objects, "Role", "kube-event-logger-lease");
    let names: Vec<&Value> = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["resourceNames"].as_array().into_iter().flatten())
        .collect();
    assert_eq!(names, [&Value::from(lease.clone())], "{role}");
    // Its holder is a pod's name: POD_NAME comes from metadata.name.
    let daemon = daemon_container(set);
    let pod_name = daemon["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "POD_NAME")
        .expect("POD_NAME is the identity");
    assert_eq!(
        pod_name["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert!(block.contains("pod/$LEADER"), "{block}");
    // The binary the image runs, and the port the container serves.
    let dockerfile =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).unwrap();
    assert!(block.contains("exec pod/$LEADER -- /kube-event-logger "));
    assert!(dockerfile.contains("ENTRYPOINT [\"/kube-event-logger\"]"));
    let port = daemon["ports"][0]["containerPort"].as_u64().unwrap();
    assert!(block.contains(&format!("port-forward pod/$LEADER {port}")));
    // The StatefulSet's governing Service exists.
    let service_name = set["spec"]["serviceName"].as_str().unwrap();
    let service = find(&objects, "Service", service_name);
    assert_eq!(service["spec"]["clusterIP"], "None", "headless");
}
