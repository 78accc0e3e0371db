//! The Helm chart's values reach the manifest, and the chart renders without warnings (no
//! symbolic link in it any more: the manifests live in the chart and deploy/base renders them).

use std::path::Path;

use serde_json::Value;

use super::{daemon_container, find, helm_template, strings, tool};

#[test]
fn the_chart_renders_without_warnings_and_has_no_link() {
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/helm/kube-event-logger");
    for entry in walk(&chart) {
        let meta = std::fs::symlink_metadata(&entry).unwrap();
        assert!(!meta.file_type().is_symlink(), "{}", entry.display());
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for args in [
        &["lint", "--strict", "deploy/helm/kube-event-logger"][..],
        &["template", "x", "deploy/helm/kube-event-logger"][..],
    ] {
        let Some(out) = tool("helm", args, root) else {
            return;
        };
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "helm {args:?}: {err}");
        assert!(
            !err.to_lowercase().contains("symbolic link") && !err.contains("WARNING"),
            "helm {args:?}: {err}"
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() && !path.is_symlink() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

#[test]
fn the_chart_values_set_the_flags_resources_and_scheduling() {
    let Some(objects) = helm_template(&[
        "--namespace",
        "ops",
        "--set",
        "config.filter=type=Warning",
        "--set",
        "config.namespace={payments,default}",
        "--set",
        "config.max-files=10",
        "--set",
        "extraArgs={--stall-timeout=10m}",
        "--set",
        "replicas=3",
        "--set",
        "resources.limits.memory=128Mi",
        "--set",
        "nodeSelector.pool=infra",
        "--set",
        "tolerations[0].operator=Exists",
        "--set",
        "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=pool",
        "--set",
        "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=Exists",
        "--set",
        "priorityClassName=",
    ]) else {
        return;
    };
    let set = find(&objects, "StatefulSet", "kube-event-logger");
    assert_eq!(set["spec"]["replicas"], 3);
    let pod = &set["spec"]["template"]["spec"];
    assert!(pod.get("priorityClassName").is_none(), "\"\" removes it");
    assert_eq!(pod["nodeSelector"]["pool"], "infra");
    assert_eq!(pod["tolerations"][0]["operator"], "Exists");
    assert!(pod["affinity"]["nodeAffinity"].is_object());
    let daemon = daemon_container(set);
    let args = strings(&daemon["args"]);
    for flag in [
        "--filter=type=Warning",
        "--namespace=payments",
        "--namespace=default",
        "--max-files=10",
        "--stall-timeout=10m",
        "--leader-elect",
    ] {
        assert!(args.contains(&flag), "{flag}: {args:?}");
    }
    assert_eq!(daemon["resources"]["limits"]["memory"], "128Mi");
    // Every flag a value names is one `run` has.
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_kube-event-logger"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for arg in &args[1..] {
        let flag = arg.split('=').next().unwrap();
        assert!(
            help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
            "{flag}"
        );
    }
    // A priority class can be named too.
    let objects = helm_template(&["--set", "priorityClassName=high"]).unwrap();
    let set = find(&objects, "StatefulSet", "kube-event-logger");
    assert_eq!(
        set["spec"]["template"]["spec"]["priorityClassName"],
        Value::from("high")
    );
}
