//! WATCH responses: chunked streams of compact frames, split at arbitrary chunk boundaries,
//! with bookmarks, history compaction and injected faults.

use super::*;

pub(super) fn watch_response(
    shared: Arc<Shared>,
    namespace: Option<String>,
    selector: Selector,
    rv: String,
    timeout: Duration,
    fault: Option<Fault>,
) -> Response<Body> {
    let (tx, body) = http_body_util::channel::Channel::<Bytes, std::io::Error>::new(8);
    let resp = Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(body.boxed())
        .unwrap();
    let cursor = match rv.as_str() {
        "" | "0" => 0,
        n => n.parse::<u64>().unwrap_or(0),
    };
    let stream = WatchStream {
        changed: shared.changed.subscribe(),
        kill: shared.kill.subscribe(),
        shared,
        namespace,
        selector,
        fault,
        tx,
        rng: fastrand::Rng::with_seed(cursor),
        sent: 0,
    };
    tokio::spawn(stream.run(rv, cursor, tokio::time::Instant::now() + timeout));
    resp
}

/// One open watch: what it sends, until the deadline, a close, or a fault ends it.
pub(super) struct WatchStream {
    shared: Arc<Shared>,
    namespace: Option<String>,
    selector: Selector,
    fault: Option<Fault>,
    tx: http_body_util::channel::Sender<Bytes, std::io::Error>,
    changed: tokio::sync::watch::Receiver<u64>,
    kill: tokio::sync::watch::Receiver<u64>,
    rng: fastrand::Rng,
    /// Frames sent so far (where a fault strikes).
    sent: usize,
}

impl WatchStream {
    async fn run(mut self, rv: String, mut cursor: u64, deadline: tokio::time::Instant) {
        let prebuilt = self.shared.inner.lock().unwrap().prebuilt.clone();
        if let Some((_, stream)) = prebuilt.filter(|(from, _)| *from == rv) {
            return self.send_prebuilt(stream).await;
        }
        match self.fault {
            Some(Fault::EmptyWatch) => return,
            Some(Fault::FrozenWatch) => {
                tokio::select! {
                    _ = self.kill.changed() => {}
                    _ = tokio::time::sleep_until(deadline) => {}
                }
                return;
            }
            _ => {}
        }
        if cursor < self.shared.inner.lock().unwrap().compacted {
            let line = format!(
                "{{\"type\":\"ERROR\",\"object\":{}}}\n",
                status_body(
                    410,
                    "Expired",
                    "The resourceVersion for the provided watch is too old."
                )
            );
            let _ = self.tx.send_data(Bytes::from(line)).await;
            return;
        }
        loop {
            // A watch closed by close_watches() sends nothing more, even if changes raced in.
            if self.kill.has_changed().unwrap_or(true) {
                return;
            }
            let pending = self.pending(&mut cursor);
            match self.send(&pending).await {
                Sent::More => {}
                Sent::Over => return,
                Sent::Cut => return self.tx.abort(std::io::Error::other("injected disconnect")),
            }
            tokio::select! {
                biased;
                _ = self.kill.changed() => return,
                r = self.changed.changed() => if r.is_err() { return },
                _ = tokio::time::sleep_until(deadline) => return,
            }
        }
    }

    /// The benchmark's stream, chunk by chunk.
    async fn send_prebuilt(mut self, chunks: Arc<Vec<Bytes>>) {
        for chunk in chunks.iter() {
            if self.tx.send_data(chunk.clone()).await.is_err() {
                return;
            }
        }
    }

    /// The changes after `cursor` this watch selects (bookmarks always); moves the cursor on.
    fn pending(&self, cursor: &mut u64) -> Vec<Change> {
        let inner = self.shared.inner.lock().unwrap();
        let start = inner.history.partition_point(|c| c.rv <= *cursor);
        if let Some(last) = inner.history.last() {
            *cursor = (*cursor).max(last.rv);
        }
        inner.history[start..]
            .iter()
            .filter(|c| {
                c.kind == "BOOKMARK"
                    || (self.namespace.as_deref().is_none_or(|ns| ns == c.namespace)
                        && selected(&self.selector, &c.line))
            })
            .cloned()
            .collect()
    }

    /// All pending frames in one buffer, cut into chunks at arbitrary points; faults strike at
    /// their frame.
    async fn send(&mut self, pending: &[Change]) -> Sent {
        let mut buf = Vec::new();
        for change in pending {
            match &self.fault {
                Some(Fault::DropMidFrame { after }) if self.sent == *after => {
                    buf.extend_from_slice(&change.line.as_bytes()[..change.line.len() / 2]);
                    send_chunks(&mut self.tx, &mut self.rng, &buf).await;
                    return Sent::Cut;
                }
                Some(Fault::Garbage { after }) if self.sent == *after => {
                    buf.extend_from_slice(
                        b"{\"type\":\"ADDED\",\"object\":{\"kind\":\"Event\" this is not json\n",
                    );
                }
                Some(Fault::BadTail { after, control }) if self.sent == *after => {
                    buf.extend_from_slice(&bad_tail(&change.line, *control));
                    buf.push(b'\n');
                }
                _ => {}
            }
            buf.extend_from_slice(change.line.as_bytes());
            buf.push(b'\n');
            self.sent += 1;
        }
        match send_chunks(&mut self.tx, &mut self.rng, &buf).await {
            true => Sent::More,
            false => Sent::Over,
        }
    }
}

/// How sending pending frames went.
pub(super) enum Sent {
    More,
    /// The client left.
    Over,
    /// A fault: the connection is to be cut mid-frame.
    Cut,
}

/// Sends `buf` in chunks of 1–700 bytes (large buffers in 64 KiB chunks). False if the client left.
pub(super) async fn send_chunks(
    tx: &mut http_body_util::channel::Sender<Bytes, std::io::Error>,
    rng: &mut fastrand::Rng,
    buf: &[u8],
) -> bool {
    let buf = Bytes::copy_from_slice(buf);
    let mut at = 0;
    while at < buf.len() {
        let n = rng.usize(1..=700);
        let end = (at + n).min(buf.len());
        if tx.send_data(buf.slice(at..end)).await.is_err() {
            return false;
        }
        at = end;
    }
    true
}

/// `line` with its head intact and its tail broken: a raw control character inside the message
/// string, or a trailing comma before the last brace.
pub(super) fn bad_tail(line: &str, control: bool) -> Vec<u8> {
    let mut bad = line.as_bytes().to_vec();
    if control {
        let at = line.find("\"message\":\"").expect("a message") + "\"message\":\"".len();
        bad.insert(at, 0x01);
    } else {
        let last = bad.len() - 1;
        bad.insert(last, b',');
    }
    bad
}
