//! `kube-event-logger summary`: golden text and JSON over a rotated, `.gz` file set with relist
//! repeats, DELETED frames and a torn line; counts checked against an independent computation.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use super::*;

const FILES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/summary/files");

fn summary(args: &[&str]) -> std::process::Output {
    std::process::Command::new(support::bin())
        .arg("summary")
        .args(args)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "80")
        .env("KUBE_EVENT_LOGGER_NOW", "2026-11-29T12:00:00Z")
        .output()
        .unwrap()
}

#[test]
fn summary_prints_text_and_json_as_their_golden_files() {
    let active = format!("{FILES}/events.json");
    let cases: &[(&[&str], &str)] = &[
        (&[], "text.txt"),
        (&["-o", "json"], "json.txt"),
        (
            &[
                "-n",
                "shop",
                "--since",
                "2026-11-29T10:00:00Z",
                "--top",
                "3",
            ],
            "text-shop-since.txt",
        ),
        (
            &["--filter", "type=Warning", "--buckets", "4"],
            "text-warnings.txt",
        ),
    ];
    for (args, golden) in cases {
        let out = summary(&[&[active.as_str()][..], args].concat());
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("events.json.000002:11: not a watch frame"),
            "the torn line is named: {stderr}"
        );
        let path = format!("{}/tests/data/summary/{golden}", env!("CARGO_MANIFEST_DIR"));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &out.stdout).unwrap();
        }
        let want = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            want,
            "{args:?} vs {golden} (UPDATE_GOLDEN=1 rewrites)"
        );
        if golden.starts_with("text") {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.lines().all(|l| l.chars().count() <= 80),
                "fits 80 columns"
            );
            assert!(!text.contains('\x1b'), "no colour off a terminal");
        }
    }
}

/// The file set's frames, oldest file first, read without the program's code.
fn frames() -> Vec<serde_json::Value> {
    let mut gz = String::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(format!("{FILES}/events.json.000001.gz")).unwrap(),
    )
    .read_to_string(&mut gz)
    .unwrap();
    let plain = |name: &str| std::fs::read_to_string(format!("{FILES}/{name}")).unwrap();
    [gz, plain("events.json.000002"), plain("events.json")]
        .iter()
        .flat_map(|text| text.lines().map(str::to_owned).collect::<Vec<_>>())
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect()
}

#[test]
fn summary_counts_equal_an_independent_count_of_the_same_files() {
    let out = summary(&[
        &format!("{FILES}/events.json"),
        "-o",
        "json",
        "--top",
        "1000",
    ]);
    assert!(out.status.success());
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let bucket = got["bucket_seconds"].as_i64().unwrap();

    // uid → (resourceVersion, highest count seen): occurrences are the growth of the count.
    let mut last: HashMap<String, (String, u64)> = HashMap::new();
    let (mut total, mut deleted, mut repeats, mut frames_counted) = (0u64, 0u64, 0u64, 0u64);
    let (mut jumps, mut series) = (0, 0);
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    let mut reasons: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut namespaces: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut buckets: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    for f in frames() {
        let e = &f["object"];
        if f["type"] == "DELETED" {
            deleted += 1;
            continue;
        }
        frames_counted += 1;
        let uid = e["metadata"]["uid"].as_str().unwrap().to_string();
        let rv = e["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
        series += usize::from(e["series"]["count"].is_u64());
        let count = e["series"]["count"]
            .as_u64()
            .or(e["count"].as_u64())
            .unwrap_or(1);
        let n = match last.get(&uid) {
            Some((seen, _)) if *seen == rv => {
                repeats += 1;
                continue;
            }
            Some((_, before)) => count.saturating_sub(*before),
            None => count,
        };
        let highest = last.get(&uid).map_or(count, |(_, b)| count.max(*b));
        last.insert(uid, (rv, highest));
        jumps += usize::from(n > 1);
        if n == 0 {
            continue;
        }
        let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
        let warning = e["type"] == "Warning";
        let w = if warning { n } else { 0 };
        total += n;
        *by_type.entry(s(&e["type"])).or_default() += n;
        *reasons.entry((s(&e["type"]), s(&e["reason"]))).or_default() += n;
        let ns = namespaces
            .entry(s(&e["metadata"]["namespace"]))
            .or_default();
        ns.0 += n;
        ns.1 += w;
        let time = [
            &e["series"]["lastObservedTime"],
            &e["lastTimestamp"],
            &e["eventTime"],
        ]
        .into_iter()
        .find_map(|t| t.as_str())
        .unwrap();
        let at: jiff::Timestamp = time.parse().unwrap();
        let b = buckets
            .entry(at.as_second().div_euclid(bucket) * bucket)
            .or_default();
        b.0 += n;
        b.1 += w;
    }
    assert!(deleted > 0 && repeats > 0, "the fixture holds both");
    assert!(jumps >= 2 && series >= 2, "count jumps and a series");
    assert_eq!(got["occurrences"], total);
    assert_eq!(got["frames"], frames_counted, "updates read, DELETED aside");
    assert_eq!(got["by_type"]["Normal"], by_type["Normal"]);
    assert_eq!(got["by_type"]["Warning"], by_type["Warning"]);
    assert_eq!(got["not_counted"]["deleted"], deleted);
    assert_eq!(got["not_counted"]["relist_repeats"], repeats);
    assert_eq!(got["not_counted"]["invalid_lines"], 1);
    let got_reasons: BTreeMap<(String, String), u64> = got["top_reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_string();
            ((s("type"), s("reason")), r["count"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(got_reasons, reasons);
    let got_ns: BTreeMap<String, (u64, u64)> = got["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let c = |k: &str| n[k].as_u64().unwrap();
            (
                n["namespace"].as_str().unwrap().to_string(),
                (c("count"), c("warnings")),
            )
        })
        .collect();
    assert_eq!(got_ns, namespaces);
    let got_buckets: BTreeMap<i64, (u64, u64)> = got["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["count"].as_u64().unwrap() > 0)
        .map(|b| {
            let start: jiff::Timestamp = b["start"].as_str().unwrap().parse().unwrap();
            let c = |k: &str| b[k].as_u64().unwrap();
            (start.as_second(), (c("count"), c("warnings")))
        })
        .collect();
    assert_eq!(got_buckets, buckets);
}

#[test]
fn summary_refuses_bad_arguments_and_names_an_unreadable_file() {
    for (args, says) in [
        (&["--top", "0"][..], "--top"),
        (&["--filter", "reason ~"], "filter"),
        (&["--since", "yesterday-ish"], "since"),
        (&["-n", "Not_A_Namespace"], "Not_A_Namespace"),
    ] {
        let out = summary(&[&[&*format!("{FILES}/events.json")][..], args].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty());
    }
    let help = String::from_utf8(summary(&["--help"]).stdout).unwrap();
    assert!(
        help.contains("growth of each Event's count")
            && help.contains("core/v1 recorder")
            && help.contains("events.k8s.io/v1 recorder")
            && help.contains("relist repeats and decreases count nothing"),
        "--help says how occurrences are counted: {help}"
    );
    let out = summary(&["/nonexistent/events.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/events.json"));
}

#[test]
fn before_since_frames_are_a_baseline_not_counted() {
    // The core/v1 Event api-5c6d-q7x2m: count 1 at 11:40, then one update to 25 at 11:45.
    let count_of = |since: &str| {
        let out = summary(&[
            &format!("{FILES}/events.json"),
            "-o",
            "json",
            "--since",
            since,
            "--filter",
            "name=api-5c6d-q7x2m",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            got["occurrences"].as_u64().unwrap(),
            got["frames"].as_u64().unwrap(),
        )
    };
    assert_eq!(
        count_of("2026-11-29T11:00:00Z"),
        (25, 2),
        "both frames in the window"
    );
    assert_eq!(
        count_of("2026-11-29T11:42:00Z"),
        (24, 1),
        "the first frame is before: its count is the baseline for the jump"
    );
}
