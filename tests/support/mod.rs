//! The tests' and benchmarks' support: the fake API server, realistic Events, a test PKI, a
//! Filebeat-like harvester, a handle on the real `kube-event-logger` binary, and the
//! benchmarks' measuring tools ([`mod@bench`]).

pub mod apiserver;
pub mod bench;
pub mod events;
pub mod harvester;
pub mod tls;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The `kube-event-logger` binary Cargo built beside the running test or benchmark (in
/// `target/<profile>/`; the test binary runs from its `deps/`). Cargo builds the package's
/// binary before its integration tests and benchmarks. `KUBE_EVENT_LOGGER_TEST_BIN=PATH` runs
/// the tests against another build (to see a new test fail on the build before a change).
pub fn bin() -> PathBuf {
    if let Some(other) = std::env::var_os("KUBE_EVENT_LOGGER_TEST_BIN") {
        return other.into();
    }
    let exe = std::env::current_exe().expect("the running test's path");
    let deps = exe.parent().expect("the test binary's directory");
    let profile = if deps.ends_with("deps") {
        deps.parent().expect("the profile's directory")
    } else {
        deps
    };
    let bin = profile.join("kube-event-logger");
    assert!(
        bin.exists(),
        "{} is not built: run the tests through cargo",
        bin.display()
    );
    bin
}
/// How long a test waits for a behaviour before it fails (a deadline, not a speed target).
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The real binary, running `run` against a fake server.
pub struct Daemon {
    child: Child,
    pub output: PathBuf,
    stderr: Arc<Mutex<Vec<String>>>,
    stdout: Arc<Mutex<Vec<u8>>>,
}

impl Daemon {
    /// Starts `run` with the kubeconfig written into `dir`, output `dir/log/events.json`, the
    /// HTTP endpoint on a free port and JSON logs; `args` come last.
    pub fn start(dir: &Path, kubeconfig: &str, args: &[&str]) -> Daemon {
        Self::start_logging(dir, kubeconfig, args, Some("info,kube_event_logger=debug"))
    }

    /// As [`start`](Self::start), with this `RUST_LOG` (`None`: unset, the daemon's default).
    pub fn start_logging(
        dir: &Path,
        kubeconfig: &str,
        args: &[&str],
        rust_log: Option<&str>,
    ) -> Daemon {
        let (cmd, output) = Self::command(dir, kubeconfig, args, rust_log);
        Self::spawn(cmd, output)
    }

    /// As [`start`](Self::start), with these environment variables set.
    pub fn start_with_env(
        dir: &Path,
        kubeconfig: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let (mut cmd, output) =
            Self::command(dir, kubeconfig, args, Some("info,kube_event_logger=debug"));
        cmd.envs(env.iter().copied());
        Self::spawn(cmd, output)
    }

    /// As [`start`](Self::start), unable to write any file past `bytes` (`RLIMIT_FSIZE`, with
    /// `SIGXFSZ` ignored so that a write fails with `EFBIG` as a full disk fails one) until
    /// [`lift_file_size_limit`](Self::lift_file_size_limit).
    #[allow(unsafe_code)]
    pub fn start_with_file_size_limit(
        dir: &Path,
        kubeconfig: &str,
        args: &[&str],
        bytes: u64,
    ) -> Daemon {
        use std::os::unix::process::CommandExt;
        let (mut cmd, output) =
            Self::command(dir, kubeconfig, args, Some("info,kube_event_logger=debug"));
        // SAFETY: between fork and exec only async-signal-safe calls, no allocation.
        unsafe {
            cmd.pre_exec(move || {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let limit = libc::rlimit {
                    rlim_cur: bytes,
                    rlim_max: libc::RLIM_INFINITY,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Self::spawn(cmd, output)
    }

    /// Lets the process write files of any size again (the disk has room again).
    #[allow(unsafe_code)]
    pub fn lift_file_size_limit(&self) {
        let limit = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: a plain syscall on our child's pid with a valid rlimit.
        let rc = unsafe {
            libc::prlimit(
                self.child.id() as libc::pid_t,
                libc::RLIMIT_FSIZE,
                &limit,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    }

    fn command(
        dir: &Path,
        kubeconfig: &str,
        args: &[&str],
        rust_log: Option<&str>,
    ) -> (Command, PathBuf) {
        let kc = dir.join("kubeconfig");
        std::fs::write(&kc, kubeconfig).unwrap();
        let output = dir.join("log/events.json");
        let mut cmd = Command::new(bin());
        cmd.arg("run")
            .arg("--log-format=json")
            .arg("--kubeconfig")
            .arg(&kc);
        if !args.iter().any(|a| a.starts_with("--http-addr")) {
            cmd.arg("--http-addr=127.0.0.1:0");
        }
        if !args.iter().any(|a| a.starts_with("--output")) {
            cmd.arg("--output-file").arg(&output);
        }
        cmd.args(args)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBECONFIG")
            .env_remove("POD_NAME")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match rust_log {
            Some(filter) => cmd.env("RUST_LOG", filter),
            None => cmd.env_remove("RUST_LOG"),
        };
        (cmd, output)
    }

    fn spawn(mut cmd: Command, output: PathBuf) -> Daemon {
        let mut child = cmd.spawn().expect("spawn kube-event-logger");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let err_pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let mut out_pipe = child.stdout.take().unwrap();
        let sink = stdout.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = out_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Daemon {
            child,
            output,
            stderr,
            stdout,
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    pub fn stdout(&self) -> Vec<u8> {
        self.stdout.lock().unwrap().clone()
    }

    /// The output file's complete lines.
    pub fn lines(&self) -> Vec<String> {
        read_lines(&self.output)
    }

    /// Waits until the output holds at least `n` lines; returns them.
    pub async fn wait_lines(&mut self, n: usize) -> Vec<String> {
        let found = poll(
            DEADLINE,
            || {
                let lines = self.lines();
                if lines.len() < n
                    && let Ok(Some(status)) = self.child.try_wait()
                {
                    panic!(
                        "daemon exited ({status}) with {} of {n} lines\n{}",
                        lines.len(),
                        self.stderr()
                    );
                }
                std::future::ready((lines.len() >= n).then_some(lines))
            },
            || format!("{n} lines"),
        )
        .await;
        found.unwrap_or_else(|e| {
            let lines = self.lines();
            let (have, stderr) = (lines.len(), self.stderr());
            panic!(
                "{e}, have {have}:\n{}\n--- stderr\n{stderr}",
                lines.join("\n")
            )
        })
    }

    /// Waits until a stderr line contains `needle`; returns it.
    pub async fn wait_log(&self, needle: &str) -> String {
        let found = poll(
            DEADLINE,
            || {
                let lines = self.stderr.lock().unwrap();
                std::future::ready(lines.iter().find(|l| l.contains(needle)).cloned())
            },
            || format!("a log line with {needle:?}"),
        )
        .await;
        found.unwrap_or_else(|e| panic!("{e}:\n{}", self.stderr()))
    }

    /// The address the HTTP endpoint bound.
    pub async fn http_addr(&self) -> std::net::SocketAddr {
        let line = self.wait_log("\"http_addr\"").await;
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        v["http_addr"].as_str().unwrap().parse().unwrap()
    }

    #[allow(unsafe_code)]
    pub fn signal(&self, sig: i32) {
        let rc = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(rc, 0, "kill({sig})");
    }

    /// Waits for the process to exit.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let child = &mut self.child;
        let exited = poll(
            within,
            || std::future::ready(child.try_wait().unwrap()),
            || "the daemon to exit".to_string(),
        )
        .await;
        let status = exited.unwrap_or_else(|e| panic!("{e}:\n{}", self.stderr()));
        // Let the pipe readers finish.
        tokio::time::sleep(Duration::from_millis(50)).await;
        status
    }

    pub async fn kill9(&mut self) {
        self.signal(libc::SIGKILL);
        self.wait_exit(DEADLINE).await;
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn read_lines(path: &Path) -> Vec<String> {
    let Ok(content) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let complete = match content.rfind('\n') {
        Some(i) => &content[..=i],
        None => "",
    };
    complete.lines().map(str::to_owned).collect()
}

/// The one polling helper: runs `check` every 20 ms until it gives a value, for at most
/// `within`; then an error that says what was awaited (`what` is asked only then).
pub async fn poll<T, F: Future<Output = Option<T>>>(
    within: Duration,
    mut check: impl FnMut() -> F,
    what: impl FnOnce() -> String,
) -> Result<T, String> {
    let start = tokio::time::Instant::now();
    loop {
        if let Some(found) = check().await {
            return Ok(found);
        }
        if start.elapsed() > within {
            return Err(format!("timed out after {within:?} waiting for {}", what()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `cond` holds.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let held = poll(
        DEADLINE,
        || std::future::ready(cond().then_some(())),
        || what.to_string(),
    );
    held.await.unwrap_or_else(|e| panic!("{e}"));
}

/// A plain HTTP/1.1 GET over a raw socket; returns (status, body).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    let status = buf.split(' ').nth(1).unwrap().parse().unwrap();
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The resourceVersion of a frame line.
pub fn rv_of(line: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["object"]["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Asserts that no line appears twice.
pub fn assert_no_duplicates(lines: &[String]) {
    let mut seen = std::collections::HashSet::new();
    for l in lines {
        assert!(seen.insert(l), "duplicate line: {l}");
    }
}
