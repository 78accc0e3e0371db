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

/// The daemon container's args as `helm template` renders them with a values file.
fn args_with_values(values: &str) -> Option<(Value, Vec<String>)> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.yaml");
    std::fs::write(&file, values).unwrap();
    let objects = helm_template(&["--values", file.to_str().unwrap()])?;
    let set = find(&objects, "StatefulSet", "kube-event-logger").clone();
    let args = strings(&daemon_container(&set)["args"])
        .into_iter()
        .map(str::to_owned)
        .collect();
    Some((set, args))
}

/// What the binary's own parser and configuration make of rendered args.
fn parsed(args: &[String]) -> kube_event_logger::config::RunConfig {
    use clap::Parser;
    let cli = kube_event_logger::cli::Cli::try_parse_from(
        std::iter::once("kube-event-logger").chain(args.iter().map(String::as_str)),
    )
    .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let kube_event_logger::cli::Command::Run(run) = cli.command else {
        panic!("not run: {args:?}")
    };
    let env = kube_event_logger::config::Env::read();
    kube_event_logger::config::RunConfig::from_args(run, &env)
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

#[test]
fn numbers_in_a_values_file_render_as_the_daemon_parses_them() {
    let Some((_, args)) = args_with_values(
        "config:\n  max-file-size: 104857600\n  max-files: 10\n  list-page-size: 250\n",
    ) else {
        return;
    };
    assert!(
        args.contains(&"--max-file-size=104857600".to_string()),
        "{args:?}"
    );
    let config = parsed(&args);
    assert_eq!(config.limits.max_file_size, 104_857_600);
    assert_eq!(config.list_page_size, 250);
    // A fraction is refused when the chart is rendered, not by a crash-looping pod.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.yaml");
    std::fs::write(&file, "config:\n  max-files: 2.5\n").unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let args = [
        "template",
        "x",
        "deploy/helm/kube-event-logger",
        "--values",
        file.to_str().unwrap(),
    ];
    let out = tool("helm", &args, root).unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("max-files"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_key_for_a_flag_the_manifest_sets_replaces_it_and_false_removes_it() {
    let Some((set, args)) = args_with_values(
        "replicas: 1\nconfig:\n  http-addr: 127.0.0.1:9090\n  output-file: /var/log/kube-event-logger/other.json\n  log-format: text\n  leader-elect: false\n  filter: type=Warning,involvedObject.kind!=Pod\n",
    ) else {
        return;
    };
    for flag in ["--http-addr", "--output-file", "--log-format"] {
        let given: Vec<_> = args.iter().filter(|a| a.starts_with(flag)).collect();
        assert_eq!(given.len(), 1, "{flag} once: {args:?}");
    }
    assert!(!args.iter().any(|a| a == "--leader-elect"), "{args:?}");
    assert_eq!(set["spec"]["replicas"], 1);
    let config = parsed(&args);
    assert_eq!(config.leader, None, "election off");
    assert_eq!(config.http_addr.as_deref(), Some("127.0.0.1:9090"));
    assert_eq!(
        config.field_selector.as_deref(),
        Some("type=Warning,involvedObject.kind!=Pod"),
        "a values file keeps the comma"
    );
    // Two replicas without the Lease would both write every event: refused at render time.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chart = ["template", "x", "deploy/helm/kube-event-logger"];
    let out = tool(
        "helm",
        &[&chart[..], &["--set", "config.leader-elect=false"]].concat(),
        root,
    )
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("replicas: 1"));
}

#[test]
fn the_filter_with_and_passes_through_set_and_resources_merge() {
    let Some(objects) = helm_template(&[
        "--set",
        "config.filter=type=Warning and involvedObject.kind!=Pod",
        "--set-string",
        "extraArgs[0]=--field-selector=reason=BackOff\\,type=Warning",
        "--set",
        "resources.limits.memory=128Mi",
    ]) else {
        return;
    };
    let set = find(&objects, "StatefulSet", "kube-event-logger");
    let daemon = daemon_container(set);
    let args: Vec<String> = strings(&daemon["args"])
        .into_iter()
        .map(str::to_owned)
        .collect();
    let config = parsed(&args);
    assert_eq!(
        config.field_selector.as_deref(),
        Some("reason=BackOff,type=Warning,type=Warning,involvedObject.kind!=Pod"),
        "{args:?}"
    );
    let resources = &daemon["resources"];
    assert_eq!(resources["limits"]["memory"], "128Mi");
    assert_eq!(
        resources["limits"]["cpu"], "500m",
        "the rest of the block stays"
    );
    assert_eq!(resources["requests"]["memory"], "32Mi");
}

#[test]
fn the_default_resources_are_the_manifests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/helm/kube-event-logger");
    let values: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(root.join("values.yaml")).unwrap())
            .unwrap();
    let set: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(root.join("manifests/statefulset.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(values["resources"], daemon_container(&set)["resources"]);
}
