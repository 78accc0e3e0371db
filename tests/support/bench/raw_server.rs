//! A bare HTTP/1.1 server on 127.0.0.1 for the benchmarks, so that the server never holds a
//! client back: the watch body is encoded once, before the clock starts, exactly as
//! kube-apiserver sends it (HTTP/1.1 chunked, each flushed buffer one chunk), and written to the
//! socket in 1 MiB slices — or, for the trickle, one chunk per event at a fixed pace.
//!
//! It answers the one LIST a fresh logger makes (an empty EventList at the stream's starting
//! resourceVersion), the first WATCH with the stream, and any later WATCH with an open body that
//! sends nothing (the logger resumes after the last frame and waits, as on a quiet cluster).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the stream's chunks reach the socket.
#[derive(Clone)]
pub enum Pace {
    /// Back to back, in 1 MiB writes.
    Burst,
    /// One chunk per write, this long apart.
    Every(Duration),
}

/// What the next WATCH gets.
struct Stream {
    /// The encoded chunks (size line, data, CRLF), in order.
    chunks: Vec<Vec<u8>>,
    pace: Pace,
}

pub struct RawServer {
    addr: SocketAddr,
    next: Arc<Mutex<Option<Stream>>>,
    stop: Arc<AtomicBool>,
    /// When the last byte of the stream was handed to the socket.
    pub sent_at: Arc<Mutex<Option<Instant>>>,
    /// Set when a WATCH that gets the stream arrives.
    pub watching: Arc<AtomicBool>,
}

/// `data` as one HTTP chunk.
pub fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

const HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";

impl RawServer {
    pub fn start(list_rv: u64) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let next: Arc<Mutex<Option<Stream>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let sent_at: Arc<Mutex<Option<Instant>>> = Arc::default();
        let watching = Arc::new(AtomicBool::new(false));
        let (n, s, at, w) = (
            next.clone(),
            stop.clone(),
            sent_at.clone(),
            watching.clone(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (n, s, at, w) = (n.clone(), s.clone(), at.clone(), w.clone());
                std::thread::spawn(move || serve(conn, list_rv, &n, &s, &at, &w));
            }
        });
        RawServer {
            addr,
            next,
            stop,
            sent_at,
            watching,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn watch_url(&self, from: u64) -> String {
        format!(
            "{}/api/v1/events?watch=true&resourceVersion={from}",
            self.url()
        )
    }

    /// The next WATCH gets these chunks (each one HTTP chunk), at this pace.
    pub fn set_stream(&self, chunks: &[bytes::Bytes], pace: Pace) {
        let chunks = chunks.iter().map(|c| chunk(c)).collect();
        *self.next.lock().unwrap() = Some(Stream { chunks, pace });
        *self.sent_at.lock().unwrap() = None;
        self.watching.store(false, Ordering::SeqCst);
    }

    /// How fast the server alone hands the stream over: a plain reader on this machine that
    /// only reads the socket to the end of the body. Frames/s for `frames` frames.
    pub fn alone_rate(&self, from: u64, frames: usize) -> f64 {
        let mut conn = TcpStream::connect(self.addr).unwrap();
        let started = Instant::now();
        write!(
            conn,
            "GET /api/v1/events?watch=true&resourceVersion={from} HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        .unwrap();
        let mut reader = BufReader::with_capacity(1 << 20, conn);
        // The body ends with the last chunk "0\r\n\r\n": the last five bytes read so far.
        let mut tail: Vec<u8> = Vec::with_capacity(16);
        loop {
            let buf = reader.fill_buf().unwrap();
            if buf.is_empty() {
                break;
            }
            let n = buf.len();
            tail.extend_from_slice(&buf[n.saturating_sub(5)..]);
            let cut = tail.len().saturating_sub(5);
            tail.drain(..cut);
            reader.consume(n);
            if tail == b"0\r\n\r\n" {
                break;
            }
        }
        frames as f64 / started.elapsed().as_secs_f64()
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

/// One connection: requests in turn (keep-alive), until the client goes or the server stops.
fn serve(
    conn: TcpStream,
    list_rv: u64,
    next: &Mutex<Option<Stream>>,
    stop: &AtomicBool,
    sent_at: &Mutex<Option<Instant>>,
    watching: &AtomicBool,
) {
    let _ = conn.set_nodelay(true);
    let mut writer = conn.try_clone().unwrap();
    let mut reader = BufReader::new(conn);
    loop {
        let mut request = String::new();
        if reader.read_line(&mut request).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                break;
            }
        }
        if !request.contains("watch=true") {
            let body = format!(
                r#"{{"kind":"EventList","apiVersion":"v1","metadata":{{"resourceVersion":"{list_rv}"}},"items":[]}}"#
            );
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if writer.write_all(response.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        let stream = next.lock().unwrap().take();
        if writer.write_all(HEAD).is_err() {
            return;
        }
        if stream.is_some() {
            watching.store(true, Ordering::SeqCst);
        }
        let Some(stream) = stream else {
            // A later watch: open and quiet until the end.
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            return;
        };
        match stream.pace {
            Pace::Burst => {
                let mut all: Vec<u8> = stream.chunks.concat();
                all.extend_from_slice(b"0\r\n\r\n");
                for slice in all.chunks(1 << 20) {
                    if writer.write_all(slice).is_err() {
                        return;
                    }
                }
            }
            Pace::Every(gap) => {
                let start = Instant::now();
                for (i, c) in stream.chunks.iter().enumerate() {
                    let due = start + gap * i as u32;
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    if writer.write_all(c).is_err() {
                        return;
                    }
                }
                if writer.write_all(b"0\r\n\r\n").is_err() {
                    return;
                }
            }
        }
        *sent_at.lock().unwrap() = Some(Instant::now());
    }
}
