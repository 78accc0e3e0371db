//! Running a command to its end for a benchmark: wall time, stdout and peak RSS.

use std::process::{Command, Stdio};
use std::time::Instant;

pub struct Measured {
    pub secs: f64,
    pub stdout: Vec<u8>,
    pub peak_rss_kib: u64,
}

/// Runs `cmd` (stderr discarded) and returns its wall time, its stdout and its peak RSS, as
/// `wait4` reports it. Panics when it fails: a benchmark has nothing to measure then.
#[allow(clippy::zombie_processes)] // reaped by wait4, which also reports its resource use
pub fn measure(cmd: &mut Command) -> Measured {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut out).unwrap();
        out
    });
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as i32;
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut usage) }, pid);
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(status, 0, "{cmd:?} failed");
    Measured {
        secs,
        stdout: reader.join().unwrap(),
        peak_rss_kib: usage.ru_maxrss as u64,
    }
}
