//! The command line: exit codes and messages at start-up, `--output -`, log format.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_at_startup_exits_4_with_the_cause() {
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(dir.path(), &server.kubeconfig(Some("wrong-token")), &[]);
    let status = d.wait_exit(support::DEADLINE).await;
    assert_eq!(status.code(), Some(4), "{}", d.stderr());
    let err = d.stderr();
    assert!(
        err.contains("401 Unauthorized") && err.contains("token"),
        "{err}"
    );
    assert!(d.lines().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_at_startup_exits_4_naming_the_missing_rbac_rule() {
    let server = tls_server().await;
    server.set_forbidden(true);
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir, &[]);
    let status = d.wait_exit(support::DEADLINE).await;
    assert_eq!(status.code(), Some(4));
    let err = d.stderr();
    assert!(err.contains("403 Forbidden"), "{err}");
    assert!(
        err.contains("verbs [get, list, watch]") && err.contains("resources [\\\"events\\\"]"),
        "{err}"
    );
    assert!(
        err.contains("cannot list resource"),
        "the server's message is kept: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dash_writes_frames_to_stdout_and_nothing_else() {
    let server = tls_server().await;
    let e = server.add("a", "A");
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir, &["--output-file", "-"]);
    eventually("a frame on stdout", || !d.stdout().is_empty()).await;
    d.signal(libc::SIGINT);
    assert_eq!(d.wait_exit(support::DEADLINE).await.code(), Some(0));
    assert_eq!(String::from_utf8(d.stdout()).unwrap(), format!("{e}\n"));
    assert!(!dir.path().join("log").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_command_lines_exit_2_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(dir.path(), "", &["--namespace", "Not_Valid"]);
    assert_eq!(d.wait_exit(support::DEADLINE).await.code(), Some(2));
    assert!(
        d.stderr().contains("not a valid namespace name"),
        "{}",
        d.stderr()
    );
    let mut d = Daemon::start(dir.path(), "not: [a kubeconfig", &[]);
    assert_eq!(d.wait_exit(support::DEADLINE).await.code(), Some(3));
    assert!(d.stderr().contains("kubeconfig"), "{}", d.stderr());
}

// --- The output file's lifecycle: rotation, compression, retention, restarts, disk full.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_filter_exits_2_with_a_caret_under_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(dir.path(), "", &["--filter", "type=Warning,kindd=Pod"]);
    assert_eq!(d.wait_exit(support::DEADLINE).await.code(), Some(2));
    let err = d.stderr();
    assert!(
        err.contains("unknown field `kindd`") && err.contains("did you mean `kind`?"),
        "{err}"
    );
    assert!(
        err.contains(r"type=Warning,kindd=Pod\n               ^^^^^"),
        "{err}"
    );
}

// --- `tail`: golden outputs, .gz and rotated input, follow across a rotation.

#[test]
fn text_logs_are_the_default() {
    let out = std::process::Command::new(support::bin())
        .args(["run", "--namespace", "Not_Valid"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    let line = err.lines().next().unwrap();
    assert!(line.contains(" ERROR ") && !line.starts_with('{'), "{err}");
    assert!(out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_server_gives_one_warning_naming_the_cause() {
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user: {{}}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &kubeconfig, &[]);
    let warning = d.wait_log("request failed; retrying with backoff").await;
    let v: serde_json::Value = serde_json::from_str(&warning).unwrap();
    assert_eq!(v["level"], "WARN", "{warning}");
    let error = v["error"].as_str().unwrap();
    assert!(
        error.to_ascii_lowercase().contains("connection refused"),
        "the cause, not debug text: {error}"
    );
    // Each attempt says which it is and how long until the next.
    assert_eq!(v["attempt"], 1, "{warning}");
    assert!(
        v["retry_in"].as_str().is_some_and(|d| d.ends_with('s')),
        "{warning}"
    );
    // A retry later, still nothing at ERROR and no library debug text.
    eventually("a second attempt", || {
        d.stderr().matches("request failed; retrying").count() >= 2
    })
    .await;
    let err = d.stderr();
    let second: serde_json::Value = serde_json::from_str(
        err.lines()
            .filter(|l| l.contains("request failed; retrying"))
            .nth(1)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(second["attempt"], 2, "{second}");
    assert!(!err.contains("\"level\":\"ERROR\""), "{err}");
    assert!(!err.contains("ServiceError"), "{err}");
}

#[test]
fn kubeconfig_problems_name_the_file_once_and_the_contexts_there_are() {
    let run = |args: &[&str]| {
        std::process::Command::new(support::bin())
            .arg("run")
            .args(args)
            .args(["--output-file", "-", "--http-addr", "127.0.0.1:0"])
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .unwrap()
    };
    let out = run(&["--kubeconfig", "/nonexistent/kubeconfig"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.matches("/nonexistent/kubeconfig").count(), 1, "{err}");
    assert!(!err.contains("'\""), "no debug quoting: {err}");
    assert!(err.contains("No such file or directory"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let cluster = "  cluster:\n    server: https://127.0.0.1:1\n";
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n{cluster}contexts:\n- name: prod\n  context:\n    cluster: c\n    user: u\n- name: staging\n  context:\n    cluster: c\n    user: u\ncurrent-context: prod\nusers:\n- name: u\n  user: {{}}\n"
        ),
    )
    .unwrap();
    let out = run(&["--kubeconfig", kc.to_str().unwrap(), "--context", "nope"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("no context \"nope\"") && err.contains("prod, staging"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    // A proxy is refused with what to do, not ignored (the client connects directly).
    let proxied = std::fs::read_to_string(&kc).unwrap().replace(
        "    server: https://127.0.0.1:1\n",
        "    server: https://127.0.0.1:1\n    proxy-url: http://127.0.0.1:3128\n",
    );
    std::fs::write(&kc, proxied).unwrap();
    let out = run(&["--kubeconfig", kc.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("proxy-url http://127.0.0.1:3128/") && err.contains("remove proxy-url"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

/// A section of a page of the docs (`docs/guide.md`, …), from its heading to the next `## `.
fn doc_section(page: &str, heading: &str) -> String {
    let path = format!("{}/docs/{page}", env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let start = readme
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?}"));
    let rest = &readme[start + heading.len()..];
    rest[..rest.find("\n## ").unwrap_or(rest.len())].to_string()
}

/// Long flags (`--word-word`) in a text.
fn long_flags(text: &str) -> std::collections::BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| {
            w.strip_prefix("--")
                .is_some_and(|f| f.starts_with(|c: char| c.is_ascii_alphabetic()))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn the_readme_run_flags_table_is_whole_and_matches_run_help() {
    let section = doc_section("guide.md", "## `kube-event-logger run`");
    let lines: Vec<&str> = section.lines().collect();
    let first = lines.iter().position(|l| l.starts_with("| flag")).unwrap();
    let rows: Vec<&str> = lines[first..]
        .iter()
        .take_while(|l| l.starts_with('|'))
        .copied()
        .collect();
    let after = &lines[first + rows.len()..];
    assert!(
        !after.iter().any(|l| l.starts_with("| `-")),
        "a blank line splits the flags table"
    );
    let documented: std::collections::BTreeSet<String> = rows
        .iter()
        .filter_map(|r| r.split('|').nth(1))
        .flat_map(long_flags)
        .collect();
    let help = std::process::Command::new(support::bin())
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let offered: std::collections::BTreeSet<String> = help
        .lines()
        .filter(|l| l.trim_start().starts_with('-'))
        .flat_map(|l| long_flags(l.split("  ").find(|p| !p.trim().is_empty()).unwrap_or("")))
        .filter(|f| f != "--help")
        .collect();
    assert_eq!(documented, offered, "docs/guide.md table vs run --help");
    assert!(
        help.contains("/metrics"),
        "--http-addr's help names /metrics"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_check_shows_log_lines_that_appear_at_the_default_level() {
    let deploy = doc_section("deploy.md", "## Deploy");
    let check = deploy
        .lines()
        .find(|l| l.contains("logs pod/$LEADER"))
        .expect("the deploy steps' check reads the logs");
    let promised: Vec<&str> = check
        .split_once('#')
        .unwrap()
        .1
        .split('"')
        .skip(1)
        .step_by(2)
        .collect();
    assert!(!promised.is_empty(), "{check}");
    let server = tls_server().await;
    server.add("a", "e0");
    let dir = tempfile::tempdir().unwrap();
    let d = support::Daemon::start_logging(dir.path(), &server.kubeconfig(Some(TOKEN)), &[], None);
    for line in promised {
        d.wait_log(line).await;
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let output = readme
        .lines()
        .find(|l| l.starts_with("export KUBE_EVENT_LOGGER_OUTPUT_FILE="))
        .unwrap();
    assert!(
        output.contains("=/tmp/"),
        "command (a) writes outside the checkout: {output}"
    );
}

#[test]
fn one_exit_code_table_names_every_code_the_binary_uses() {
    let path = format!("{}/docs/guide.md", env!("CARGO_MANIFEST_DIR"));
    let guide = std::fs::read_to_string(path).unwrap();
    assert_eq!(
        guide.matches("| exit code |").count(),
        1,
        "one table, every subcommand"
    );
    let table = guide.split("| exit code |").nth(1).unwrap();
    let codes: Vec<u8> = table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.split('|').nth(1).unwrap().trim().parse().unwrap())
        .collect();
    use kube_event_logger::exit_code::ExitCode;
    let expected: Vec<u8> = ExitCode::ALL.iter().map(|c| c.code()).collect();
    assert_eq!(codes, expected);
    // Elsewhere the guide points at the table instead of listing codes of its own.
    assert!(
        !guide.contains("Exit codes: 0"),
        "a second list of exit codes"
    );
}

#[test]
fn tail_help_says_lines_counts_rows_shown() {
    let help = std::process::Command::new(support::bin())
        .args(["tail", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let lines = help.split("--lines").nth(1).unwrap();
    assert!(lines.contains("rows that the selection shows"), "{help}");
    assert!(!lines.contains("last N lines of the file"), "{help}");
}
