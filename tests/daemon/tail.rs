//! `kube-event-logger tail`: golden output per format, rotated files, follow, colours.

use super::*;

fn tail(args: &[&str]) -> std::process::Output {
    std::process::Command::new(support::bin())
        .arg("tail")
        .args(args)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "warn")
        // AGE counts from here: the golden files stay true.
        .env("KUBE_EVENT_LOGGER_NOW", "2023-10-20T00:00:00Z")
        .output()
        .unwrap()
}

#[test]
fn tail_prints_each_format_as_its_golden_file() {
    let fixtures = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/fixtures/frames.jsonl"
    );
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
        (&["-n", "probes", "--no-headers"], "table-namespace.txt"),
        (&["--lines", "2", "-o", "json"], "json-last-2.txt"),
    ];
    for (args, golden) in cases {
        let out = tail(&[&[fixtures][..], args].concat());
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = format!("{}/tests/data/tail/{golden}", env!("CARGO_MANIFEST_DIR"));
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
            "{}/tests/data/tail/json.txt",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
        "-o json is the raw lines"
    );
}

#[test]
fn tail_lines_counts_the_rows_that_match_not_the_lines_read() {
    let fixtures = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/fixtures/frames.jsonl"
    );
    let all: Vec<&str> = include_str!("../data/fixtures/frames.jsonl")
        .lines()
        .collect();
    let unhealthy: Vec<&str> = all
        .iter()
        .copied()
        .filter(|l| l.contains(r#""reason":"Unhealthy""#))
        .collect();
    assert_eq!(unhealthy.len(), 3, "the fixture holds three");
    // The last two matching rows, as journalctl -n, wherever they are in the file.
    let out = tail(&[
        fixtures,
        "--lines",
        "2",
        "--filter",
        "reason=Unhealthy",
        "-o",
        "json",
    ]);
    assert!(out.status.success());
    let shown: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(shown, unhealthy[1..]);
    // Fewer matching rows than asked: all of them.
    let out = tail(&[
        fixtures,
        "--lines",
        "9",
        "--filter",
        "reason=Unhealthy",
        "-o",
        "json",
    ]);
    let shown: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(shown, unhealthy);
}

#[test]
fn tail_all_reads_gz_and_plain_rotated_files_oldest_first_and_reports_bad_lines() {
    use std::io::Write;
    let lines: Vec<&str> = include_str!("../data/fixtures/frames.jsonl")
        .lines()
        .collect();
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
    use std::io::Write;
    let lines: Vec<&str> = include_str!("../data/fixtures/frames.jsonl")
        .lines()
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.json");
    std::fs::write(&path, format!("{}\n", lines[0])).unwrap();
    let following = Following::start(&[
        "-f".as_ref(),
        "-o".as_ref(),
        "json".as_ref(),
        path.as_os_str(),
    ]);
    let next = || following.next();
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follow_shows_every_file_of_rotations_faster_than_it_looks_or_names_the_lost_ones() {
    let lines: Vec<String> = (1..=40)
        .map(|rv| {
            format!(
                r#"{{"type":"ADDED","object":{{"kind":"Event","apiVersion":"v1","metadata":{{"name":"e{rv}","namespace":"a","resourceVersion":"{rv}"}},"reason":"R","type":"Normal"}}}}"#
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.json");
    let rotated = |seq: u64| dir.path().join(format!("events.json.{seq:06}"));
    std::fs::write(&path, format!("{}\n", lines[0])).unwrap();
    let following = Following::start(&[
        "-f".as_ref(),
        "--lines".as_ref(),
        "0".as_ref(),
        "-o".as_ref(),
        "json".as_ref(),
        path.as_os_str(),
    ]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Four rotations with no pause (tail looks every 100 ms), the daemon's way: rename, then a
    // new file at the path. Files 2 and 3 are never the active file when tail looks.
    let write_lines = |at: &std::path::Path, range: std::ops::Range<usize>| {
        let text: String = lines[range].iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(at, text).unwrap();
    };
    write_lines(&path, 0..5);
    for (seq, range) in [(1, 5..10), (2, 10..15), (3, 15..20), (4, 20..25)] {
        std::fs::rename(&path, rotated(seq)).unwrap();
        write_lines(&path, range);
    }
    for expected in &lines[1..25] {
        assert_eq!(&following.next(), expected, "every file, once, in order");
    }
    // Now one of the files in between (6, holding 26..30) is gone (retention) before tail could
    // look: the rest is shown, and stderr names what is not.
    tokio::time::sleep(Duration::from_millis(400)).await;
    std::fs::rename(&path, rotated(5)).unwrap();
    write_lines(&path, 25..30);
    std::fs::rename(&path, rotated(6)).unwrap();
    write_lines(&path, 30..35);
    std::fs::remove_file(rotated(6)).unwrap();
    std::fs::rename(&path, rotated(7)).unwrap();
    write_lines(&path, 35..40);
    for expected in lines[30..40].iter() {
        assert_eq!(&following.next(), expected);
    }
    let err = following.stderr.lock().unwrap().clone();
    assert!(
        err.contains("rotated file 000006") && err.contains("not shown"),
        "{err}"
    );
    assert!(err.contains("after resourceVersion 25"), "{err}");
}

// --- /metrics and readiness on a stalled watch.

#[test]
fn tail_highlights_warnings_only_on_a_terminal() {
    let fixtures = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/fixtures/frames.jsonl"
    );
    // `script` gives the command a pseudo-terminal as stdout.
    let on_tty = std::process::Command::new("script")
        .args([
            "-qec",
            &format!("{} tail --no-headers {fixtures}", support::bin().display()),
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

/// `tail ARGS` running in the background: its stdout lines as they come, and its stderr.
pub(crate) struct Following {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    pub(crate) stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Following {
    pub(crate) fn start(args: &[&std::ffi::OsStr]) -> Self {
        use std::io::{BufRead, Read};
        let mut child = std::process::Command::new(support::bin())
            .arg("tail")
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (mut pipe, sink) = (child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Following {
            child,
            lines,
            stderr,
        }
    }

    pub(crate) fn next(&self) -> String {
        self.lines
            .recv_timeout(support::DEADLINE)
            .expect("tail -f printed nothing")
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follow_starts_from_the_last_lines_and_waits_for_a_missing_file() {
    use std::io::Write;
    let lines: Vec<&str> = include_str!("../data/fixtures/frames.jsonl")
        .lines()
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.json");
    std::fs::write(&path, lines[..6].join("\n") + "\n").unwrap();
    // By default, the last 10 lines: all 6 here. With --lines 2, the last two.
    let f = Following::start(&[
        "-f".as_ref(),
        "-o".as_ref(),
        "json".as_ref(),
        path.as_os_str(),
    ]);
    for expected in &lines[..6] {
        assert_eq!(f.next(), *expected);
    }
    drop(f);
    let args = ["-f", "--lines", "2", "-o", "json"].map(std::ffi::OsStr::new);
    let f = Following::start(&[&args[..], &[path.as_os_str()]].concat());
    assert_eq!(f.next(), lines[4]);
    assert_eq!(f.next(), lines[5]);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    writeln!(file, "{}", lines[6]).unwrap();
    assert_eq!(f.next(), lines[6]);
    drop(f);
    // A file that is not there yet: said once, then followed when it appears.
    let later = dir.path().join("later.json");
    let f = Following::start(&[
        "-f".as_ref(),
        "-o".as_ref(),
        "json".as_ref(),
        later.as_os_str(),
    ]);
    eventually("the waiting notice", || {
        f.stderr.lock().unwrap().contains("waiting for")
    })
    .await;
    std::fs::write(&later, format!("{}\n", lines[7])).unwrap();
    assert_eq!(f.next(), lines[7]);
    assert_eq!(f.stderr.lock().unwrap().matches("waiting for").count(), 1);
}

#[test]
fn tail_reads_a_gz_file_by_its_content_whatever_its_name() {
    use std::io::Write;
    let fixtures = include_str!("../data/fixtures/frames.jsonl");
    let dir = tempfile::tempdir().unwrap();
    for name in ["events.json.000004.gz", "copied-events.json"] {
        let path = dir.path().join(name);
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(fixtures.as_bytes()).unwrap();
        gz.finish().unwrap();
        let out = tail(&[path.to_str().unwrap(), "-o", "json"]);
        assert!(out.status.success());
        assert_eq!(String::from_utf8(out.stdout).unwrap(), fixtures, "{name}");
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn tail_errors_are_plain_come_first_and_say_what_to_do() {
    // A directory: named as one, with the file to give instead; nothing printed before.
    let dir = tempfile::tempdir().unwrap();
    for follow in [false, true] {
        let d = format!("{}/", dir.path().display());
        let args: Vec<&str> = if follow { vec!["-f", &d] } else { vec![&d] };
        let out = tail(&args);
        assert_eq!(out.status.code(), Some(1), "follow {follow}");
        assert!(out.stdout.is_empty(), "no header before the error");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.contains("is a directory") && err.contains("events.json"),
            "{err}"
        );
    }
    // A file that is not ours: a few lines reported, then an error, not exit 0.
    let passwd = dir.path().join("passwd");
    let text: String = (0..25)
        .map(|i| format!("user{i}:x:{i}:{i}::/home:/bin/sh\n"))
        .collect();
    std::fs::write(&passwd, text).unwrap();
    let out = tail(&[passwd.to_str().unwrap(), "--no-headers"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("does not hold watch frames"), "{err}");
    assert!(err.matches("skipped").count() <= 5, "{err}");
    let out = tail(&["/nonexistent/events.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no table header before the error");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("kube-event-logger tail: cannot read /nonexistent/events.json"),
        "{err}"
    );
    assert!(
        !err.contains("ERROR") && !err.contains("Z "),
        "no log decoration: {err}"
    );
    let fixtures = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/fixtures/frames.jsonl"
    );
    let out = tail(&[
        fixtures,
        "--since",
        "2026-01-02T00:00:00Z",
        "--until",
        "2026-01-01T00:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("later than --until") && err.contains("swap"),
        "{err}"
    );
    // A relative time written with its sign is a value, not a flag.
    for since in ["-5m", "-1000d"] {
        let out = tail(&[fixtures, "--since", since, "--no-headers"]);
        assert!(
            out.status.success(),
            "{since}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = tail(&[fixtures, "-n", "Bad_NS"]);
    assert_eq!(out.status.code(), Some(2));
}
