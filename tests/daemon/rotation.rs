//! The output file's life: rotation under a Filebeat-like harvester, a deleted output file,
//! a full disk.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_harvester_reads_every_frame_once_across_rotations_within_the_disk_bound() {
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    std::fs::create_dir_all(&log).unwrap();
    let harvester = Harvester::start(log.clone(), "events.json");
    let mut d = start(
        &server,
        &dir,
        // Compress at the next rotation, as soon as allowed: the tightest disk bound.
        &[
            "--max-file-size",
            "1MiB",
            "--max-files",
            "2",
            "--compress-after",
            "0s",
        ],
    );
    wait_watching(&server, &server.current_rv().to_string()).await;
    let expected = burst(&server, "e", 4000).await;
    d.wait_lines(1).await;
    eventually("every frame harvested", || {
        harvester.lines().len() >= expected.len()
    })
    .await;
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(support::DEADLINE).await.success());
    let (harvested, max_bytes) = harvester.finish();
    assert_eq!(harvested.len(), expected.len(), "exactly once");
    assert_eq!(harvested, expected, "in order");
    let bound = (2 + 2) << 20;
    assert!(max_bytes <= bound, "disk use {max_bytes} > {bound}");
    let rotated = output_names(&log);
    assert!(rotated.iter().any(|n| n.ends_with(".gz")), "{rotated:?}");
    // The only dot-files are the output's lock and scope record (never harvested).
    assert!(
        rotated
            .iter()
            .filter(|n| n.starts_with('.'))
            .all(|n| n == ".events.json.lock" || n == ".events.json.scopes"),
        "no temp file left: {rotated:?}"
    );
    // What is kept (gz decompressed, plain, active) is exactly the newest frames, in order.
    let kept = all_kept_lines(&log, "events.json");
    assert!(!kept.is_empty() && kept.len() < expected.len());
    assert_eq!(kept, expected[expected.len() - kept.len()..]);
    // Every file the harvester glob takes starts with a whole frame.
    for name in rotated
        .iter()
        .filter(|n| n.starts_with("events.json") && !n.ends_with(".gz"))
    {
        let head = std::fs::read(log.join(name)).unwrap();
        assert!(
            head.is_empty() || head.starts_with(b"{\"type\":\""),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_file_passes_max_file_size_even_when_a_burst_arrives_as_one_batch() {
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    std::fs::create_dir_all(&log).unwrap();
    let limit = 64 * 1024;
    let mut d = start(
        &server,
        &dir,
        &["--max-file-size", "64KiB", "--max-files", "100"],
    );
    wait_watching(&server, &server.current_rv().to_string()).await;
    // ~1,000 realistic frames (1.3 KB) at once: batches of up to 256 KiB reach the writer.
    let expected = burst(&server, "e", 1000).await;
    d.wait_lines(1).await;
    eventually("every frame written", || {
        all_kept_lines(&log, "events.json").len() >= expected.len()
    })
    .await;
    assert_eq!(all_kept_lines(&log, "events.json"), expected);
    let names = output_names(&log);
    assert!(names.len() > 10, "{names:?}");
    for name in names.iter().filter(|n| n.starts_with("events.json")) {
        let size = std::fs::metadata(log.join(name)).unwrap().len();
        assert!(size <= limit, "{name}: {size} bytes > {limit}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_output_file_is_noticed_and_recreated() {
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut d = start(&server, &dir, &[]);
    wait_watching(&server, &server.current_rv().to_string()).await;
    server.add("a", "before");
    d.wait_lines(1).await;
    std::fs::remove_file(&d.output).unwrap();
    let after = server.add("a", "after");
    assert_eq!(d.wait_lines(1).await, [after]);
    d.wait_log("was deleted by someone else").await;
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct TinyFs(std::path::PathBuf);

impl TinyFs {
    fn mount(at: &std::path::Path, size: &str) -> Option<TinyFs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| TinyFs(at.to_path_buf()))
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_pauses_the_watch_and_loses_nothing() {
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let Some(_fs) = TinyFs::mount(&log, "256k") else {
        eprintln!(
            "skipped: cannot mount a tmpfs here (the writer's disk-full handling is covered by output unit tests)"
        );
        return;
    };
    let mut d = start(&server, &dir, &[]);
    let addr = d.http_addr().await;
    wait_watching(&server, &server.current_rv().to_string()).await;
    wait_ready(addr).await;
    // Leave ~16 KiB free, then send ~52 KiB of frames.
    let filler = log.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 240 * 1024]);
    let expected: Vec<String> = (0..40)
        .map(|i| server.add("a", &format!("full-{i}")))
        .collect();
    d.wait_log("cannot write the output").await;
    assert_eq!(
        http_get(addr, "/readyz").await.0,
        503,
        "not ready while the disk is full"
    );
    let partial = d.lines();
    assert!(partial.len() < expected.len());
    assert_eq!(
        partial,
        expected[..partial.len()],
        "no torn or skipped line"
    );
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(d.wait_lines(40).await, expected);
    d.wait_log("the output is writable again").await;
    wait_ready(addr).await;
}

// --- Filters: push-down to the API server and local evaluation.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_files_stay_plain_for_compress_after_then_are_compressed() {
    let server = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let args = [
        "--max-file-size",
        "4KiB",
        // Files stay within 4KiB (about three frames each): room for all of them.
        "--max-files",
        "200",
        "--compress-after",
        "2s",
    ];
    let _d = start(&server, &dir, &args);
    wait_watching(&server, &server.current_rv().to_string()).await;
    let expected = burst(&server, "e", 300).await;
    eventually("every frame in the files", || {
        all_kept_lines(&log, "events.json").len() == expected.len()
    })
    .await;
    // Young rotated files are plain: a Filebeat that was down can still finish them.
    let names = output_names(&log);
    assert!(
        names
            .iter()
            .filter(|n| n.starts_with("events.json."))
            .count()
            >= 3,
        "{names:?}"
    );
    assert!(
        names.iter().all(|n| !n.ends_with(".gz")),
        "compressed too early: {names:?}"
    );
    // Once older than --compress-after, all but the newest are compressed, between rotations.
    eventually("compression after 2s", || {
        let names = output_names(&log);
        let plain = names
            .iter()
            .filter(|n| n.starts_with("events.json.") && !n.ends_with(".gz"))
            .count();
        plain == 1 && names.iter().any(|n| n.ends_with(".gz"))
    })
    .await;
    assert_eq!(
        all_kept_lines(&log, "events.json"),
        expected,
        "nothing lost or repeated"
    );
}

/// Filebeat blocked by its output, with its readers closed (`close.on_state_change.inactive`), or
/// restarted, while rotations go on: what it finds when it comes back is what the daemon kept
/// plain. With `--compress-after 0s` the rest of a rotated file is gone (the window the README
/// states); with the default it is all there, each frame once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_harvester_away_during_rotations_finds_everything_while_files_stay_plain() {
    for (compress_after, loses) in [("0s", true), ("1h", false)] {
        let server = tls_server().await;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        std::fs::create_dir_all(&log).unwrap();
        let harvester = Harvester::start(log.clone(), "events.json");
        let args = [
            "--max-file-size",
            "8KiB",
            // Files stay within their size (about three frames each): room for all of them.
            "--max-files",
            "200",
            "--compress-after",
            compress_after,
        ];
        let mut d = start(&server, &dir, &args);
        wait_watching(&server, &server.current_rv().to_string()).await;
        let mut expected = burst(&server, "before", 5).await;
        eventually("the first frames harvested", || {
            harvester.lines().len() == 5
        })
        .await;
        harvester.pause();
        expected.extend(burst(&server, "away", 400).await);
        eventually("rotations while the harvester is away", || {
            output_names(&log)
                .iter()
                .filter(|n| n.starts_with("events.json."))
                .count()
                >= 4
                && all_kept_lines(&log, "events.json").len() == expected.len()
        })
        .await;
        if loses {
            eventually("compression", || {
                output_names(&log).iter().any(|n| n.ends_with(".gz"))
            })
            .await;
        }
        harvester.resume();
        if !loses {
            eventually("the harvester catches up", || {
                harvester.lines().len() >= expected.len()
            })
            .await;
        }
        d.signal(libc::SIGTERM);
        assert!(d.wait_exit(support::DEADLINE).await.success());
        let (harvested, _) = harvester.finish();
        assert_no_duplicates(&harvested);
        if loses {
            assert!(
                harvested.len() < expected.len(),
                "--compress-after 0s: the rest of compressed files is out of reach"
            );
        } else {
            assert_eq!(
                harvested, expected,
                "--compress-after 1h: every frame, once, in order"
            );
        }
    }
}
