//! The Logstash pipeline's occurrence filter (`logstash/pipeline/10-filter.conf`, the ruby filter
//! `kube-event-logger-occurrences`), run by Ruby on fixture frames and on a sequence with a count
//! jump, an events.k8s.io series, a relist repeat, a decrease and a deletion, against the
//! daemon's own rule (`src/occurrence.rs`). Logstash runs the filter under JRuby; the code uses
//! nothing JRuby does not have.

use super::*;

use kube_event_logger::frame::DataKind;
use kube_event_logger::occurrence::{History, Occurrences, Update};

/// The filter's `init` and `code`, as the pipeline file has them.
fn ruby_filter() -> (String, String) {
    let filter = plugins("logstash/pipeline/10-filter.conf")
        .into_iter()
        .find(|p| {
            p.name == "ruby" && strings_in(option(p, "id")) == ["kube-event-logger-occurrences"]
        })
        .expect("10-filter.conf has the occurrence filter");
    let one = |name| strings_in(option(&filter, name)).remove(0);
    (one("init"), one("code"))
}

/// A stand-in for Logstash's Event (`get`/`set` on `[a][b]` references) and a loop that runs
/// the filter's `init` once and its `code` on each JSON document read from stdin, printing the
/// occurrences it set.
const RUNNER: &str = r#"
require 'json'
class Event
  def initialize(h)
    @h = h
  end
  def keys(ref)
    ref.scan(/\[([^\]]+)\]/).flatten
  end
  def get(ref)
    keys(ref).reduce(@h) { |v, k| v.is_a?(Hash) ? v[k] : nil }
  end
  def set(ref, value)
    path = keys(ref)
    last = path.pop
    path.reduce(@h) { |v, k| v[k] ||= {} }[last] = value
  end
end
filter = Object.new
filter.instance_eval(File.read(ARGV[0]))
code = File.read(ARGV[1])
STDIN.each_line do |line|
  event = Event.new(JSON.parse(line))
  filter.instance_exec(event) { |event| eval(code) }
  puts event.get('[watch][occurrences]')
end
"#;

/// The occurrences the Ruby filter sets on `frames`, with room for `cap` Events.
fn by_ruby(frames: &[Value], cap: usize) -> Vec<u64> {
    let ruby = std::process::Command::new("ruby").arg("--version").output();
    assert!(ruby.is_ok(), "ruby is needed (.ci/run installs it)");
    let (init, code) = ruby_filter();
    let dir = tempfile::tempdir().unwrap();
    let files = ["runner.rb", "init.rb", "code.rb"].map(|f| dir.path().join(f));
    for (file, text) in files.iter().zip([RUNNER, &init, &code]) {
        std::fs::write(file, text).unwrap();
    }
    let documents: String = frames
        .iter()
        .map(|f| {
            let doc =
                serde_json::json!({"watch": {"type": f["type"]}, "k8s": {"event": f["object"]}});
            format!("{doc}\n")
        })
        .collect();
    let mut child = std::process::Command::new("ruby")
        .args(&files)
        .env("OCCURRENCE_EVENTS", cap.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(documents.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap_or_else(|_| panic!("not a number: {l:?}")))
        .collect()
}

/// The daemon's rule on the same frames: an Event not seen counts its whole count on ADDED and
/// 1 on MODIFIED (its earlier count unknown), as after a restart that resumes.
fn by_the_rule(frames: &[Value], cap: usize) -> Vec<u64> {
    let mut rule = Occurrences::with_history(cap, History::Resumed);
    frames
        .iter()
        .map(|f| {
            let e = &f["object"];
            let count = e["series"]["count"].as_i64().or(e["count"].as_i64());
            let kind = DataKind::of(f["type"].as_str().unwrap().as_bytes());
            let update = Update::new(
                e["metadata"]["uid"].as_str(),
                e["metadata"]["resourceVersion"].as_str(),
                count,
                kind,
            );
            rule.count(update).occurrences
        })
        .collect()
}

fn frame(kind: &str, uid: &str, rv: u32, count: Option<u64>, series: Option<u64>) -> Value {
    serde_json::json!({
        "type": kind,
        "object": {
            "kind": "Event",
            "metadata": {"uid": uid, "resourceVersion": rv.to_string(), "namespace": "a"},
            "count": count,
            "series": series.map(|c| serde_json::json!({"count": c, "lastObservedTime": "2026-11-22T10:00:00.000000Z"})),
            "reason": "BackOff",
        }
    })
}

#[test]
fn the_logstash_filter_counts_occurrences_by_the_daemon_s_rule() {
    let sequence = vec![
        frame("ADDED", "u1", 1, Some(1), None),
        frame("MODIFIED", "u1", 2, Some(2), None),
        // The core/v1 recorder's spam filter lets a burst through as one jump.
        frame("MODIFIED", "u1", 3, Some(27), None),
        // A relist repeats the current version as ADDED.
        frame("ADDED", "u1", 3, Some(27), None),
        // A decrease counts nothing.
        frame("MODIFIED", "u1", 4, Some(20), None),
        // events.k8s.io: the first occurrence without a series, then series.count.
        frame("ADDED", "u2", 5, None, None),
        frame("MODIFIED", "u2", 6, None, Some(2)),
        frame("MODIFIED", "u2", 7, None, Some(40)),
        // An Event first seen mid-way: its earlier count is unknown.
        frame("MODIFIED", "u3", 8, Some(9), None),
        frame("DELETED", "u1", 9, Some(27), None),
        frame("MODIFIED", "u1", 10, Some(30), None),
    ];
    let ruby = by_ruby(&sequence, 1000);
    assert_eq!(ruby, [1, 1, 25, 0, 0, 1, 1, 38, 1, 0, 1]);
    assert_eq!(ruby, by_the_rule(&sequence, 1000));

    // The wire fixtures, and realistic frames, with room for all and with room for few.
    let mut frames: Vec<Value> = read("tests/data/fixtures/frames.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    frames.extend(realistic_frames());
    frames.extend(sequence);
    for cap in [1000, 4] {
        assert_eq!(
            by_ruby(&frames, cap),
            by_the_rule(&frames, cap),
            "cap {cap}"
        );
    }
}
