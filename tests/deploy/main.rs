//! deploy/ rendered with `kubectl kustomize` and checked object by object against the daemon:
//! least-privilege RBAC, the restricted security context, probes, and paths that match the
//! daemon's default output and Filebeat's glob. (`.ci/run` also scans the rendered manifests with
//! checkov.) The Dockerfile is checked for its shape.

use std::path::Path;

use serde_json::Value;

mod check_steps;
mod helm;
mod prometheus;

/// Runs a tool CI installs, or `None` (with a note) when it is missing outside CI.
fn tool(program: &str, args: &[&str], dir: &Path) -> Option<std::process::Output> {
    match std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
    {
        Ok(out) => Some(out),
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("skipped: {program} is not on PATH ({e}); .ci/run installs it");
            None
        }
        Err(e) => panic!("{program} is needed in CI: {e}"),
    }
}

/// The objects a tool prints as YAML documents, run in the repository's root.
fn rendered(program: &str, args: &[&str]) -> Option<Vec<Value>> {
    let out = tool(program, args, Path::new(env!("CARGO_MANIFEST_DIR")))?;
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    Some(serde_saphyr::from_str_multiple::<Value, _>(&text).unwrap())
}

/// Renders a kustomization.
fn render(dir: &str) -> Option<Vec<Value>> {
    rendered("kubectl", &["kustomize", dir])
}

/// `helm template` of the chart.
fn helm_template(args: &[&str]) -> Option<Vec<Value>> {
    let chart = [
        "template",
        "kube-event-logger",
        "deploy/helm/kube-event-logger",
    ];
    rendered("helm", &[&chart[..], args].concat())
}

fn by_kind_and_name(objects: Vec<Value>) -> std::collections::BTreeMap<(String, String), Value> {
    objects
        .into_iter()
        .filter(|o| !o.is_null())
        .map(|o| {
            let key = (
                o["kind"].as_str().unwrap().to_owned(),
                o["metadata"]["name"].as_str().unwrap().to_owned(),
            );
            (key, o)
        })
        .collect()
}

#[test]
fn the_helm_chart_renders_the_kustomize_base_and_takes_namespace_and_image() {
    let Some(chart) = helm_template(&["--namespace", "kube-system"]) else {
        return;
    };
    let Some(base) = render("deploy/base") else {
        return;
    };
    let (chart, base) = (by_kind_and_name(chart), by_kind_and_name(base));
    assert_eq!(
        chart.keys().collect::<Vec<_>>(),
        base.keys().collect::<Vec<_>>()
    );
    for (key, object) in &base {
        assert_eq!(&chart[key], object, "{key:?}");
    }
    // Values: another namespace everywhere a namespace is, another image in both containers.
    let other = by_kind_and_name(
        helm_template(&[
            "--namespace",
            "monitoring",
            "--set",
            "image.repository=registry.example.com/kube-event-logger",
            "--set",
            "image.tag=1.2.3",
        ])
        .unwrap(),
    );
    for ((kind, name), o) in &other {
        let cluster_scoped = kind.starts_with("Cluster");
        assert_eq!(
            o["metadata"]["namespace"].as_str(),
            (!cluster_scoped).then_some("monitoring"),
            "{kind} {name}"
        );
        for subject in o["subjects"].as_array().into_iter().flatten() {
            assert_eq!(subject["namespace"], "monitoring", "{kind} {name}");
        }
    }
    let pod = &other[&("StatefulSet".to_owned(), "kube-event-logger".to_owned())]["spec"]["template"]
        ["spec"];
    for c in pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .chain(pod["initContainers"].as_array().unwrap())
    {
        assert_eq!(c["image"], "registry.example.com/kube-event-logger:1.2.3");
    }
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| {
            o["kind"] == kind
                && o["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(name))
        })
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// The names of a container's environment variables, in order.
fn env_names(container: &Value) -> Vec<&str> {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The restricted-profile settings every long-running container must have.
fn assert_restricted(c: &Value, pod: &Value) {
    let name = c["name"].as_str().unwrap();
    let sc = &c["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
    assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"], "{name}");
    assert!(
        sc["capabilities"]["add"].is_null(),
        "{name} adds capabilities"
    );
    assert_eq!(sc["runAsNonRoot"], true, "{name}");
    assert!(
        sc["runAsUser"].as_u64().unwrap() >= 10000,
        "{name}: a high UID"
    );
    let seccomp = if sc["seccompProfile"].is_null() {
        &pod["securityContext"]["seccompProfile"]
    } else {
        &sc["seccompProfile"]
    };
    assert_eq!(seccomp["type"], "RuntimeDefault", "{name}");
    assert!(
        c["resources"]["requests"]["memory"].is_string()
            && c["resources"]["limits"]["memory"].is_string(),
        "{name}: resources"
    );
    assert!(
        c["resources"]["requests"]["cpu"].is_string()
            && c["resources"]["limits"]["cpu"].is_string(),
        "{name}: resources"
    );
}

fn daemon_container(deploy: &Value) -> &Value {
    deploy["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "kube-event-logger")
        .unwrap()
}

#[test]
fn the_base_is_least_privilege_hardened_and_matches_the_daemon() {
    let Some(objects) = render("deploy/base") else {
        return;
    };
    let default_output = Path::new(kube_event_logger::cli::DEFAULT_OUTPUT);
    let output_dir = default_output.parent().unwrap().to_str().unwrap();

    let role = find(&objects, "ClusterRole", "kube-event-logger");
    let rules = role["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1, "one rule: {rules:?}");
    assert_eq!(strings(&rules[0]["apiGroups"]), [""]);
    assert_eq!(strings(&rules[0]["resources"]), ["events"]);
    assert_eq!(strings(&rules[0]["verbs"]), ["get", "list", "watch"]);
    let binding = find(&objects, "ClusterRoleBinding", "kube-event-logger");
    assert_eq!(binding["roleRef"]["name"], "kube-event-logger");
    assert_eq!(binding["subjects"][0]["name"], "kube-event-logger");
    assert_eq!(binding["subjects"][0]["namespace"], "kube-system");
    find(&objects, "ServiceAccount", "kube-event-logger");
    find(&objects, "NetworkPolicy", "kube-event-logger");

    let deploy = find(&objects, "StatefulSet", "kube-event-logger");
    assert_eq!(deploy["metadata"]["namespace"], "kube-system");
    assert_eq!(deploy["spec"]["replicas"], 2, "a leader and a standby");
    assert_eq!(deploy["spec"]["updateStrategy"]["type"], "RollingUpdate");
    assert_eq!(deploy["spec"]["podManagementPolicy"], "Parallel");
    let pod = &deploy["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "kube-event-logger");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = daemon_container(deploy);
    assert_restricted(c, pod);
    let args = strings(&c["args"]);
    assert_eq!(args[0], "run");
    assert!(
        args.contains(&format!("--output-file={}", default_output.display()).as_str()),
        "{args:?}"
    );
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert!(args.contains(&"--http-addr=0.0.0.0:8080"));
    assert_eq!(c["volumeMounts"][0]["mountPath"], output_dir);
    let volume = &pod["volumes"][0];
    assert_eq!(volume["name"], c["volumeMounts"][0]["name"]);
    assert_eq!(
        volume["hostPath"]["path"], output_dir,
        "where the node's Filebeat harvests"
    );
    assert_eq!(volume["hostPath"]["type"], "DirectoryOrCreate");

    // The init container: root, but only CHOWN/FOWNER, to hand the hostPath to the daemon.
    let init = &pod["initContainers"][0];
    let isc = &init["securityContext"];
    assert_eq!(isc["allowPrivilegeEscalation"], false);
    assert_eq!(isc["readOnlyRootFilesystem"], true);
    assert_eq!(strings(&isc["capabilities"]["drop"]), ["ALL"]);
    assert_eq!(strings(&isc["capabilities"]["add"]), ["CHOWN", "FOWNER"]);
    let owner = format!(
        "{}:{}",
        c["securityContext"]["runAsUser"], c["securityContext"]["runAsGroup"]
    );
    assert_eq!(
        strings(&init["args"]),
        ["prepare-dir", output_dir, "--owner", owner.as_str()]
    );
    assert_eq!(init["volumeMounts"][0]["mountPath"], output_dir);

    // High availability: leader election, one directory per replica, spread over nodes.
    assert!(args.contains(&"--leader-elect"), "{args:?}");
    for container in [c, init] {
        let env = container["env"].as_array().unwrap();
        let pod_name = env.iter().find(|e| e["name"] == "POD_NAME").unwrap();
        assert_eq!(
            pod_name["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.name"
        );
        assert_eq!(
            container["volumeMounts"][0]["subPathExpr"], "$(POD_NAME)",
            "two replicas on one node never share a file"
        );
    }
    let spread = &pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        [0]["podAffinityTerm"];
    assert_eq!(spread["topologyKey"], "kubernetes.io/hostname");
    let labels = &deploy["spec"]["template"]["metadata"]["labels"];
    for (k, v) in spread["labelSelector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(&labels[k], v);
    }
    let pdb = find(&objects, "PodDisruptionBudget", "kube-event-logger");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert_eq!(pdb["spec"]["selector"], deploy["spec"]["selector"]);
    // The Lease only, in its namespace; update only on its name.
    let role = find(&objects, "Role", "kube-event-logger-lease");
    assert_eq!(role["metadata"]["namespace"], "kube-system");
    let rules = role["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2, "{rules:?}");
    for rule in rules {
        assert_eq!(strings(&rule["apiGroups"]), ["coordination.k8s.io"]);
        assert_eq!(strings(&rule["resources"]), ["leases"]);
    }
    assert_eq!(strings(&rules[0]["verbs"]), ["get", "create"]);
    assert!(rules[0]["resourceNames"].is_null());
    assert_eq!(strings(&rules[1]["verbs"]), ["update"]);
    assert_eq!(strings(&rules[1]["resourceNames"]), ["kube-event-logger"]);
    let binding = find(&objects, "RoleBinding", "kube-event-logger-lease");
    assert_eq!(binding["roleRef"]["name"], "kube-event-logger-lease");
    assert_eq!(binding["subjects"][0]["name"], "kube-event-logger");
}

/// A shipper in the daemon's pod: the overlay shares an emptyDir, needs no root init container,
/// mounts the shipper's config from a ConfigMap generated from the repository's own file, and
/// lets the shipper reach its destination.
struct Sidecar {
    overlay: &'static str,
    container: &'static str,
    config_volume: &'static str,
    config_file: &'static str,
    egress_port: u64,
    /// The shipper's own endpoint that says its process runs: its readiness, which must not
    /// depend on the backend (a backend outage would make every replica NotReady and block
    /// drains through the PodDisruptionBudget).
    ready_path: &'static str,
}

fn assert_sidecar(s: &Sidecar) -> Option<Value> {
    let objects = render(s.overlay)?;
    let deploy = find(&objects, "StatefulSet", "kube-event-logger");
    let pod = &deploy["spec"]["template"]["spec"];
    assert!(
        pod["initContainers"].is_null(),
        "no root init container without a hostPath"
    );
    let volumes = pod["volumes"].as_array().unwrap();
    assert!(volumes.iter().all(|v| v["hostPath"].is_null()));
    let output = volumes.iter().find(|v| v["name"] == "output").unwrap();
    assert!(output["emptyDir"].is_object());
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 2);
    for c in containers {
        assert_restricted(c, pod);
        assert!(
            c["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["name"] == "output" && m["mountPath"] == "/var/log/kube-event-logger")
        );
    }
    // The config is the repository's file itself, through the generated ConfigMap.
    let config_volume = volumes
        .iter()
        .find(|v| v["name"] == s.config_volume)
        .unwrap();
    let cm_name = config_volume["configMap"]["name"].as_str().unwrap();
    let cm = find(&objects, "ConfigMap", cm_name);
    assert_eq!(
        cm["metadata"]["name"], cm_name,
        "the generated name (with its hash) is referenced"
    );
    let original =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(s.config_file)).unwrap();
    let key = Path::new(s.config_file)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(cm["data"][key].as_str().unwrap(), original);
    let shipper = containers
        .iter()
        .find(|c| c["name"] == s.container)
        .unwrap();
    let mount = shipper["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == s.config_volume)
        .unwrap();
    let in_container = format!("{}/{key}", mount["mountPath"].as_str().unwrap());
    assert!(
        strings(&shipper["args"]).contains(&in_container.as_str()),
        "{} reads {in_container}",
        s.container
    );
    let egress: Vec<u64> = find(&objects, "NetworkPolicy", "kube-event-logger")["spec"]["egress"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| {
            e["ports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["port"].as_u64().unwrap())
        })
        .collect();
    assert!(
        egress.contains(&s.egress_port),
        "{} may reach its destination: {egress:?}",
        s.container
    );
    // A pinned tag is pulled once per node.
    assert_eq!(
        shipper["imagePullPolicy"], "IfNotPresent",
        "{}",
        s.container
    );
    // The probes look at the running shipper, not at its configuration's syntax; an HTTP probe's
    // port is a port of the container that the NetworkPolicy lets in.
    let ingress: Vec<u64> = find(&objects, "NetworkPolicy", "kube-event-logger")["spec"]["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["ports"].as_array().unwrap().iter())
        .map(|p| p["port"].as_u64().unwrap())
        .collect();
    let ready = &shipper["readinessProbe"];
    assert_eq!(
        ready["httpGet"]["path"], s.ready_path,
        "{}: readiness looks at the shipper's own process, not at its backend: {ready}",
        s.container
    );
    assert!(ready["exec"].is_null(), "{}: {ready}", s.container);
    for probe in ["livenessProbe", "readinessProbe"] {
        let p = &shipper[probe];
        let command = strings(&p["exec"]["command"]).join(" ");
        assert!(
            !command.contains(" test config") && !command.contains(" fmt "),
            "{}: {probe} checks only the configuration's syntax: {command}",
            s.container
        );
        if let Some(port) = p["httpGet"]["port"].as_str() {
            let number = shipper["ports"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == port)
                .unwrap_or_else(|| panic!("{}: no port {port}", s.container))["containerPort"]
                .as_u64()
                .unwrap();
            assert!(
                ingress.contains(&number),
                "{probe} port {number}: {ingress:?}"
            );
        }
    }
    Some(shipper.clone())
}

#[test]
fn the_sidecar_overlay_shares_an_emptydir_with_filebeat_configured_from_filebeat_dir() {
    assert_sidecar(&Sidecar {
        overlay: "deploy/overlays/sidecar",
        container: "filebeat",
        config_volume: "filebeat-config",
        config_file: "filebeat/filebeat.yml",
        egress_port: 5044,
        ready_path: "/",
    });
}

#[test]
fn the_loki_overlay_runs_alloy_beside_the_daemon_with_every_variable_its_config_reads() {
    let Some(alloy) = assert_sidecar(&Sidecar {
        overlay: "deploy/overlays/loki",
        container: "alloy",
        config_volume: "alloy-config",
        config_file: "loki/config.alloy",
        egress_port: 3100,
        ready_path: "/-/ready",
    }) else {
        return;
    };
    let config =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("loki/config.alloy"))
            .unwrap();
    let env = env_names(&alloy);
    let read: Vec<&str> = config
        .split("sys.env(\"")
        .skip(1)
        .map(|rest| &rest[..rest.find('"').unwrap()])
        .collect();
    assert!(!read.is_empty());
    for name in &read {
        assert!(
            env.contains(name),
            "{name} is read by config.alloy but not set"
        );
    }
    // Alloy keeps its read positions on a volume, not in the read-only root.
    let args = strings(&alloy["args"]);
    let storage = args
        .iter()
        .find_map(|a| a.strip_prefix("--storage.path="))
        .expect("--storage.path");
    assert!(
        alloy["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["mountPath"] == storage)
    );
}

#[test]
fn the_dockerfile_builds_a_static_binary_into_a_minimal_non_root_image() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let stages: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert!(stages.len() >= 2, "multi-stage: {stages:?}");
    assert!(stages[0].contains(" AS build"));
    // Static (musl) for the architecture being built: amd64 and arm64 alike, no fixed x86_64.
    assert!(
        dockerfile.contains("target=\"$(uname -m)-unknown-linux-musl\"")
            && dockerfile.contains("--target \"$target\"")
            && dockerfile.contains("--locked"),
        "a static, reproducible build for the platform being built"
    );
    assert!(
        !dockerfile.contains("x86_64-unknown"),
        "no fixed architecture"
    );
    assert!(dockerfile.contains("--platform linux/amd64,linux/arm64"));
    // hadolint (CI runs it): apt packages pinned (DL3008).
    if let Some(out) = tool("hadolint", &["Dockerfile"], root) {
        assert!(
            out.status.success(),
            "hadolint:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let last = &dockerfile[dockerfile.rfind("\nFROM ").unwrap()..];
    assert!(
        last.starts_with("\nFROM scratch") || last.contains("distroless/static"),
        "minimal runtime image"
    );
    let user = last
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER in the final stage");
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("a numeric UID");
    assert!(uid >= 10000);
    let deploy = std::fs::read_to_string(
        root.join("deploy/helm/kube-event-logger/manifests/statefulset.yaml"),
    )
    .unwrap();
    assert!(
        deploy.contains(&format!("runAsUser: {uid}")),
        "the manifest runs the image's user"
    );
    let ignore = std::fs::read_to_string(root.join(".dockerignore")).unwrap();
    assert!(ignore.lines().any(|l| l.trim() == "target/"));
    for needed in ["Cargo.toml", "Cargo.lock", "src", "benches"] {
        assert!(
            dockerfile.contains(&format!("COPY {needed}"))
                || dockerfile.contains(&format!(" {needed} ")),
            "{needed}"
        );
        assert!(
            !ignore
                .lines()
                .any(|l| l.trim().trim_end_matches('/') == needed),
            "{needed} is ignored"
        );
    }
}

/// The deploy steps (docs/deploy.md, docs/loki.md), the part that needs no registry: the overlay they write renders with
/// the registry's image in both containers, pulled if not present.
/// The overlay a docs block after `marker` writes with a YAML heredoc, rendered in its place
/// in a copy of the checkout (links to deploy/ and loki/).
fn readme_overlay(page: &str, marker: &str) -> Option<Vec<Value>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("docs").join(page)).unwrap();
    let deploy = std::fs::read_to_string(root.join("docs/deploy.md")).unwrap();
    let steps = readme
        .split_once(marker)
        .unwrap_or_else(|| panic!("docs/{page} marks {marker}"))
        .1;
    let body = steps
        .split_once("<<YAML\n")
        .and_then(|(_, rest)| rest.split_once("YAML\n"))
        .expect("the steps write the overlay with a YAML heredoc")
        .0;
    // The block may sit in a list item: its lines carry the heredoc's own indentation.
    let margin = body.len() - body.trim_start_matches(' ').len();
    let kustomization: String = body
        .lines()
        .map(|l| format!("{}\n", l.get(margin..).unwrap_or("")))
        .collect::<String>()
        .replace("$REGISTRY", "registry.example.com/platform");
    // The registry is set once, in the deploy steps; other pages' steps refer to it.
    assert!(deploy.contains("REGISTRY=registry.example.com/platform"));
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("deploy/overlays/local");
    std::fs::create_dir_all(&local).unwrap();
    for linked in [
        "deploy/base",
        "deploy/overlays/loki",
        "deploy/overlays/sidecar",
        "loki",
        "filebeat",
    ] {
        std::os::unix::fs::symlink(root.join(linked), dir.path().join(linked)).unwrap();
    }
    std::fs::write(local.join("kustomization.yaml"), kustomization).unwrap();
    let objects = render(local.to_str().unwrap());
    let ignored = std::fs::read_to_string(root.join(".gitignore")).unwrap();
    assert!(ignored.lines().any(|l| l == "/deploy/overlays/local/"));
    objects
}

fn assert_our_image(containers: &[&Value]) {
    for c in containers {
        assert_eq!(
            c["image"], "registry.example.com/platform/kube-event-logger:0.1.0",
            "{}",
            c["name"]
        );
        assert_eq!(c["imagePullPolicy"], "IfNotPresent", "{}", c["name"]);
    }
}

#[test]
fn the_readme_overlay_points_both_containers_at_your_registry() {
    let Some(objects) = readme_overlay("deploy.md", "<!-- deploy-steps") else {
        return;
    };
    let spec = &find(&objects, "StatefulSet", "kube-event-logger")["spec"]["template"]["spec"];
    assert_our_image(&[&spec["initContainers"][0], &spec["containers"][0]]);
}

#[test]
fn the_readme_loki_overlay_sets_the_loki_url_and_cluster_and_your_image() {
    let Some(objects) = readme_overlay("loki.md", "<!-- loki-steps") else {
        return;
    };
    let spec = &find(&objects, "StatefulSet", "kube-event-logger")["spec"]["template"]["spec"];
    assert_our_image(&[&spec["containers"][0]]);
    let alloy = &spec["containers"][1];
    assert_eq!(alloy["name"], "alloy");
    let env = env_names(alloy);
    assert_eq!(env, ["LOKI_URL", "CLUSTER_NAME"]);
    assert!(
        alloy["env"][0]["value"]
            .as_str()
            .unwrap()
            .ends_with("/loki/api/v1/push")
    );
}

/// The shell blocks of a docs page (fenced as sh, also inside list items).
fn shell_blocks(page: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("docs").join(page)).unwrap();
    let mut blocks = Vec::new();
    let mut open: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        match &mut open {
            None if trimmed.starts_with("```sh") => open = Some(String::new()),
            Some(block) if trimmed.starts_with("```") => {
                blocks.push(std::mem::take(block));
                open = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

#[test]
fn every_docs_block_that_uses_the_registry_sets_it_or_stops_without_it() {
    let mut seen = 0;
    for page in ["deploy.md", "loki.md", "elasticsearch.md"] {
        for block in shell_blocks(page) {
            if !block.contains("$REGISTRY") {
                continue;
            }
            seen += 1;
            assert!(
                block.contains("REGISTRY=") || block.contains("${REGISTRY:?"),
                "docs/{page}: a block uses $REGISTRY without setting it, so it would render \
                 image: /kube-event-logger without complaint:\n{block}"
            );
        }
    }
    assert!(seen >= 2, "the scan finds the blocks");
}
