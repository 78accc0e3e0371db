//! What `run` says when the command line points somewhere unusable: the file the user gave, what
//! was tried, and what to do — and a start that fails leaves nothing behind.

use super::*;

/// `run` with a kubeconfig for `server`, these arguments, and its exit code and stderr.
fn run_once(server: &FakeApiServer, dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let kc = dir.join("kubeconfig");
    std::fs::write(&kc, server.kubeconfig(Some(TOKEN))).unwrap();
    let out = std::process::Command::new(support::bin())
        .arg("run")
        .arg("--kubeconfig")
        .arg(&kc)
        .args(args)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8(out.stderr).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_output_is_told_by_the_path_given_with_what_to_do() {
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    // A directory nobody may create files in (sysfs refuses even root).
    let (code, err) = run_once(
        &server,
        dir.path(),
        &[
            "--output-file",
            "/sys/kernel/events.json",
            "--http-addr",
            "127.0.0.1:0",
        ],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(
            "cannot write in /sys/kernel, the directory of the output /sys/kernel/events.json"
        ) && err.contains("prepare-dir"),
        "{err}"
    );
    assert!(
        !err.contains(".lock"),
        "the user never named the lock: {err}"
    );
    // A file where a directory should be.
    let afile = dir.path().join("afile");
    std::fs::write(&afile, "x").unwrap();
    let output = afile.join("events.json");
    let (code, err) = run_once(
        &server,
        dir.path(),
        &[
            "--output-file",
            output.to_str().unwrap(),
            "--http-addr",
            "127.0.0.1:0",
        ],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!("{} is a file, not a directory", afile.display())),
        "{err}"
    );
    assert!(!err.contains("File exists"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_fails_on_the_http_address_leaves_nothing_behind() {
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out_dir = dir.path().join("log");
    let output = out_dir.join("events.json");
    let (code, err) = run_once(
        &server,
        dir.path(),
        &[
            "--output-file",
            output.to_str().unwrap(),
            "--http-addr",
            &addr,
        ],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&addr), "{err}");
    assert!(
        !out_dir.exists(),
        "nothing created: {:?}",
        std::fs::read_dir(&out_dir).ok().map(|d| d.count())
    );
}

#[test]
fn without_any_cluster_access_it_says_what_it_tried_and_what_to_give() {
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(support::bin())
        .args(["run", "--output-file", "-", "--http-addr", "127.0.0.1:0"])
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBECONFIG")
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8(out.stderr).unwrap();
    let default = format!("{}/.kube/config", home.path().display());
    assert_eq!(err.matches(&default).count(), 1, "{err}");
    assert!(!err.contains("\"/"), "no debug quoting: {err}");
    for told in [
        "KUBERNETES_SERVICE_HOST",
        "KUBECONFIG is not set",
        "--kubeconfig",
    ] {
        assert!(err.contains(told), "{told}: {err}");
    }
}

#[test]
fn every_run_flag_can_be_set_from_the_environment_as_help_says() {
    let help = std::process::Command::new(support::bin())
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    // Each flag's block runs from its line to the next flag's.
    let mut blocks: Vec<(String, String)> = Vec::new();
    for line in help.lines() {
        let t = line.trim_start();
        if t.starts_with('-') && (line.starts_with("  -") || line.starts_with("      --")) {
            let flag = t
                .split_whitespace()
                .find(|w| w.starts_with("--"))
                .unwrap()
                .trim_end_matches(',')
                .to_string();
            blocks.push((flag, String::new()));
        } else if let Some((_, text)) = blocks.last_mut() {
            text.push_str(line);
            text.push(' ');
        }
    }
    let flags: Vec<&(String, String)> = blocks.iter().filter(|(f, _)| f != "--help").collect();
    assert!(flags.len() >= 20, "{help}");
    for (flag, text) in flags {
        let want = format!(
            "[env: KUBE_EVENT_LOGGER_{}=",
            flag.trim_start_matches("--")
                .replace('-', "_")
                .to_uppercase()
        );
        // The repeatable --namespace takes a comma-separated list from the environment.
        let want = if flag == "--namespace" {
            want.replace("_NAMESPACE=", "_NAMESPACES=")
        } else {
            want
        };
        assert!(text.contains(&want), "{flag}: no {want}… in {text}");
    }
}

#[test]
fn an_environment_variable_reaches_the_flag_and_is_checked_like_it() {
    let out = std::process::Command::new(support::bin())
        .args(["run", "--output-file", "-"])
        .env("KUBE_EVENT_LOGGER_MAX_FILES", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--max-files"), "{err}");
}

#[test]
fn completion_scripts_come_from_the_command_line_itself() {
    for shell in ["bash", "zsh", "fish"] {
        let out = std::process::Command::new(support::bin())
            .args(["completion", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        for word in ["kube-event-logger", "max-files", "follow"] {
            assert!(script.contains(word), "{shell}: {word}");
        }
    }
    let out = std::process::Command::new(support::bin())
        .args(["completion", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_addr_off_runs_without_a_listener() {
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(
        dir.path(),
        &server.kubeconfig(Some(TOKEN)),
        &["--http-addr", "off"],
    );
    d.wait_log("no HTTP listener").await;
    wait_watching(&server, &server.current_rv().to_string()).await;
    let line = server.add("a", "e0");
    assert_eq!(d.wait_lines(1).await, [line]);
    assert!(!d.stderr().contains("serving /healthz"), "{}", d.stderr());
}
