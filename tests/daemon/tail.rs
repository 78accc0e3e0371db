//! `kube-event-logger tail`: golden output per format, rotated files, follow, colours.

use super::*;

fn tail(args: &[&str]) -> std::process::Output {
    std::process::Command::new(support::BIN)
        .arg("tail")
        .args(args)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn tail_prints_each_format_as_its_golden_file() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/frames.jsonl");
    let cases: &[(&[&str], &str)] = &[
        (&[], "table.txt"),
        (&["-o", "wide"], "wide.txt"),
        (&["-o", "json"], "json.txt"),
        (
            &[
                "--no-headers",
                "--filter",
                "type=Warning and count>1 or frame.type=DELETED",
            ],
            "table-filtered.txt",
        ),
        (
            &[
                "--since",
                "2023-10-19T21:45:00Z",
                "--until",
                "2023-10-19T21:59:00Z",
                "-o",
                "wide",
                "--no-headers",
            ],
            "wide-since-until.txt",
        ),
    ];
    for (args, golden) in cases {
        let out = tail(&[&[fixtures][..], args].concat());
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = format!("{}/tests/tail/{golden}", env!("CARGO_MANIFEST_DIR"));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &out.stdout).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            expected,
            "{args:?} vs {golden} (UPDATE_GOLDEN=1 rewrites)"
        );
    }
    assert_eq!(
        std::fs::read_to_string(fixtures).unwrap(),
        std::fs::read_to_string(format!(
            "{}/tests/tail/json.txt",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
        "-o json is the raw lines"
    );
}

#[test]
fn tail_all_reads_gz_and_plain_rotated_files_oldest_first_and_reports_bad_lines() {
    use std::io::Write;
    let lines: Vec<&str> = include_str!("../fixtures/frames.jsonl").lines().collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.json");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(dir.path().join("events.json.000001.gz")).unwrap(),
        flate2::Compression::default(),
    );
    writeln!(gz, "{}\n{}\n{}", lines[0], lines[1], lines[2]).unwrap();
    gz.finish().unwrap();
    std::fs::write(
        dir.path().join("events.json.000002"),
        format!("{}\nnot a frame\n{}\n", lines[3], lines[4]),
    )
    .unwrap();
    std::fs::write(&path, format!("{}\n{}\n{}\n", lines[5], lines[6], lines[7])).unwrap();
    let out = tail(&[path.to_str().unwrap(), "--all", "-o", "json"]);
    assert!(out.status.success());
    let expected: String = lines.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("events.json.000002:2: not a watch frame"),
        "{err}"
    );
    let out = tail(&[path.to_str().unwrap(), "-o", "json"]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().lines().count(),
        3,
        "without --all only the active file"
    );
    let out = tail(&[dir.path().join("missing.json").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follow_keeps_going_across_a_rotation() {
    use std::io::{BufRead, Write};
    let lines: Vec<&str> = include_str!("../fixtures/frames.jsonl").lines().collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.json");
    std::fs::write(&path, format!("{}\n", lines[0])).unwrap();
    let mut child = std::process::Command::new(support::BIN)
        .args(["tail", "-f", "-o", "json"])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let next = || {
        rx.recv_timeout(support::DEADLINE)
            .expect("tail -f printed nothing")
    };
    assert_eq!(next(), lines[0]);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    // A line written in two parts is printed once, whole.
    write!(f, "{}", &lines[1][..50]).unwrap();
    f.flush().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    writeln!(f, "{}", &lines[1][50..]).unwrap();
    writeln!(f, "{}", lines[2]).unwrap();
    assert_eq!(next(), lines[1]);
    assert_eq!(next(), lines[2]);
    // Rotation: the rest of the old file, then the new file from its start.
    writeln!(f, "{}", lines[3]).unwrap();
    std::fs::rename(&path, dir.path().join("events.json.000001")).unwrap();
    writeln!(f, "{}", lines[4]).unwrap();
    std::fs::write(&path, format!("{}\n{}\n", lines[5], lines[6])).unwrap();
    for expected in &lines[3..7] {
        assert_eq!(next(), *expected);
    }
    let _ = child.kill();
    let _ = child.wait();
}

// --- /metrics and readiness on a stalled watch.

#[test]
fn tail_highlights_warnings_only_on_a_terminal() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/frames.jsonl");
    // `script` gives the command a pseudo-terminal as stdout.
    let on_tty = std::process::Command::new("script")
        .args([
            "-qec",
            &format!("{} tail --no-headers {fixtures}", support::BIN),
            "/dev/null",
        ])
        .env_remove("NO_COLOR")
        .output();
    let Ok(on_tty) = on_tty else {
        eprintln!("skipped: no `script` (util-linux) to make a terminal");
        return;
    };
    let text = String::from_utf8_lossy(&on_tty.stdout);
    let yellow = text.lines().filter(|l| l.starts_with("\x1b[33m")).count();
    assert_eq!(yellow, 5, "the five Warning events: {text}");
    assert!(
        text.lines()
            .any(|l| l.contains("Normal") && !l.contains('\x1b'))
    );
    let piped = tail(&["--no-headers", fixtures]);
    assert!(
        !String::from_utf8_lossy(&piped.stdout).contains('\x1b'),
        "no colour into a pipe"
    );
}
