//! What a new user types around the logger: `tail` and `summary` on the file `run` writes (its
//! path from the same variable), on several files, on a file that is not ours, and a bad value
//! in an environment variable.

use super::*;
use crate::tail::Following;

const FIXTURES: &str = include_str!("../data/fixtures/frames.jsonl");

fn viewer(command: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = std::process::Command::new(support::bin());
    c.arg(command)
        .args(args)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env("KUBE_EVENT_LOGGER_NOW", "2023-10-20T00:00:00Z")
        .env_remove("KUBE_EVENT_LOGGER_OUTPUT_FILE");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn tail_and_summary_read_the_file_run_writes_from_the_same_variable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.json");
    std::fs::write(&path, FIXTURES).unwrap();
    let env = [("KUBE_EVENT_LOGGER_OUTPUT_FILE", path.to_str().unwrap())];
    let out = viewer("tail", &["-o", "json"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), FIXTURES);
    let out = viewer("summary", &["-o", "json"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["occurrences"].as_u64().unwrap() > 0, "{json}");
}

#[test]
fn tail_reads_several_files_in_the_order_given_and_follows_only_one() {
    let lines: Vec<&str> = FIXTURES.lines().collect();
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("pod-0.json"), dir.path().join("pod-1.json"));
    std::fs::write(&old, lines[..3].join("\n") + "\n").unwrap();
    std::fs::write(&new, lines[3..].join("\n") + "\n").unwrap();
    let (o, n) = (old.to_str().unwrap(), new.to_str().unwrap());
    let out = viewer("tail", &["-o", "json", o, n], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), FIXTURES, "old then new, each whole");
    let out = viewer("tail", &["-f", o, n], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--follow reads one file"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follow_all_shows_every_file_whole_then_follows() {
    use std::io::Write;
    // More lines than the 10 that -f starts with.
    let lines: Vec<&str> = FIXTURES.lines().cycle().take(30).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.json");
    let rotated = dir.path().join("events.json.000001");
    std::fs::write(&rotated, lines[..4].join("\n") + "\n").unwrap();
    std::fs::write(&path, lines[4..lines.len() - 1].join("\n") + "\n").unwrap();
    let args = ["-f", "--all", "-o", "json"].map(std::ffi::OsStr::new);
    let f = Following::start(&[&args[..], &[path.as_os_str()]].concat());
    for expected in &lines[..lines.len() - 1] {
        assert_eq!(f.next(), *expected, "every line of every file, in order");
    }
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    writeln!(file, "{}", lines[lines.len() - 1]).unwrap();
    assert_eq!(f.next(), lines[lines.len() - 1], "then it follows");
}

#[test]
fn a_file_that_is_not_ours_is_refused_alike_by_tail_and_summary_with_nothing_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let applog = dir.path().join("applog.txt");
    let log: String = (0..20_000)
        .map(|i| format!("2026-11-22T10:00:00Z INFO request {i} served\n"))
        .collect();
    std::fs::write(&applog, log).unwrap();
    let path = applog.to_str().unwrap();
    let tail = viewer("tail", &[path], &[]);
    let summary = viewer("summary", &[path], &[]);
    for (name, out) in [("tail", &tail), ("summary", &summary)] {
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(
            out.stdout.is_empty(),
            "{name}: nothing on stdout before the error"
        );
        let err = text(&out.stderr);
        assert!(err.contains("does not hold watch frames"), "{name}: {err}");
        assert!(
            err.lines().count() <= 10,
            "{name}: a few lines, not one per line: {err}"
        );
        assert!(!err.contains("EventFrame"), "{name}: {err}");
    }
    // The same check, the same words.
    let last = |o: &std::process::Output| text(&o.stderr).lines().last().unwrap().to_owned();
    assert_eq!(
        last(&tail).replace("kube-event-logger tail", ""),
        last(&summary).replace("kube-event-logger summary", "")
    );
}

#[test]
fn bad_lines_among_frames_are_told_first_then_counted_and_a_frame_without_object_is_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.json");
    let mut content = String::from(FIXTURES);
    content.push_str("{\"type\":\"ADDED\"}\n");
    for i in 0..500 {
        content.push_str(&format!("[{i}]\n"));
    }
    std::fs::write(&path, content).unwrap();
    let p = path.to_str().unwrap();
    for command in ["tail", "summary"] {
        let out = viewer(command, &[p], &[]);
        assert!(out.status.success(), "{command}: {}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(err.lines().count() <= 22, "{command}: {err}");
        assert!(err.contains("no object"), "{command}: {err}");
        assert!(
            err.contains("more lines that are not watch frames"),
            "{command}: {err}"
        );
        assert!(
            !err.contains("EventFrame") && !err.contains("struct"),
            "{command}: {err}"
        );
    }
    let out = viewer("tail", &["--no-headers", p], &[]);
    assert!(
        !text(&out.stdout)
            .lines()
            .any(|l| l.split_whitespace().all(|c| c == "-")),
        "no row of dashes"
    );
}

#[test]
fn a_bad_value_from_the_environment_names_the_variable() {
    let out = std::process::Command::new(support::bin())
        .args(["run", "--output-file", "-"])
        .env("KUBE_EVENT_LOGGER_MAX_FILES", "lots")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("--max-files"), "{err}");
    assert!(err.contains("KUBE_EVENT_LOGGER_MAX_FILES=lots"), "{err}");
}

#[test]
fn the_viewers_offer_no_log_format_and_run_no_other_name_for_its_output() {
    for command in ["tail", "summary"] {
        let help = viewer(command, &["--help"], &[]);
        assert!(!text(&help.stdout).contains("--log-format"), "{command}");
    }
    let help = viewer("run", &["--help"], &[]);
    assert!(text(&help.stdout).contains("--log-format"));
    let out = viewer("run", &["--output", "-"], &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--output is not a name of --output-file"
    );
}
