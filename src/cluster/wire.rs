//! A WATCH on a connection of its own. The request goes through the client's layers (address,
//! credentials, headers) like every other; then it is written, and its response read, here —
//! HTTP/1.1 (RFC 9112) by hand — so that the body's chunks are decoded where they are read: one
//! data frame per read of the connection, however many chunks it held. A pooled client's
//! connection task would hand each chunk to the watch through a channel (two task polls, a
//! wake-up and a buffer handle per chunk), and a busy API server sends every event in a chunk of
//! its own.
//!
//! The connection serves one request (`connection: close`): a watch lasts minutes, so a new
//! handshake per watch costs nothing that shows, and nothing is left to reuse after a watch that
//! ended part-way.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::chunked::{BadChunk, Chunked, held, take_chunked};

use tower::BoxError;

/// A watch request through the client's layers: the response head, and its body read on the
/// connection.
pub type WatchService =
    tower::util::BoxCloneSyncService<Request<kube::client::Body>, Response<WatchBody>, BoxError>;

/// Longest response head read (status line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// Room made in the read buffer before each read: one read takes what the socket holds, up to
/// this (the API server's chunks are one event each, a few KiB).
const READ_SIZE: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the API server's response is not HTTP/1.1: {0}")]
    Head(String),
    #[error("the response body is not valid chunked encoding: {0}")]
    Chunk(&'static str),
    #[error("the connection closed inside the response body")]
    Closed,
    #[error("only a GET without a body is sent on a connection of its own")]
    NotAWatch,
    #[error("the request {0} names no host")]
    NoHost(String),
}

/// What a connection must be to carry a watch.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// The innermost service of the watch stack: a new connection from `connector` per request.
#[derive(Clone)]
pub struct Connect<C> {
    connector: C,
}

impl<C> Connect<C> {
    pub fn new(connector: C) -> Self {
        Connect { connector }
    }
}

impl From<BadChunk> for WireError {
    fn from(BadChunk(what): BadChunk) -> Self {
        WireError::Chunk(what)
    }
}

impl<C> tower::Service<Request<kube::client::Body>> for Connect<C>
where
    C: tower::Service<http::Uri> + Clone + Send + 'static,
    C::Response: hyper::rt::Read + hyper::rt::Write + Send + Unpin + 'static,
    C::Future: Send,
    C::Error: Into<BoxError>,
{
    type Response = Response<WatchBody>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<WatchBody>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.connector.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<kube::client::Body>) -> Self::Future {
        // The connector that was polled ready serves this call; a clone waits for the next.
        let ready = self.connector.clone();
        let mut connector = std::mem::replace(&mut self.connector, ready);
        Box::pin(async move {
            let head = request_head(&req)?;
            let io = connector
                .call(req.uri().clone())
                .await
                .map_err(Into::into)?;
            let mut io: Pin<Box<dyn Io>> = Box::pin(hyper_util::rt::TokioIo::new(io));
            io.write_all(&head).await?;
            io.flush().await?;
            Ok(read_response(io).await?)
        })
    }
}

/// The request's head as written on the wire.
fn request_head(req: &Request<kube::client::Body>) -> Result<Vec<u8>, WireError> {
    use http_body::Body;
    if req.method() != http::Method::GET || req.body().size_hint().exact() != Some(0) {
        return Err(WireError::NotAWatch);
    }
    let uri = req.uri();
    let host = uri
        .authority()
        .ok_or_else(|| WireError::NoHost(uri.to_string()))?;
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut head = format!("GET {target} HTTP/1.1\r\nhost: {host}\r\n").into_bytes();
    for (name, value) in req.headers() {
        if name == http::header::HOST || name == http::header::CONNECTION {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"connection: close\r\n\r\n");
    Ok(head)
}

/// Reads the response head; the body is what follows on the connection.
async fn read_response(mut io: Pin<Box<dyn Io>>) -> Result<Response<WatchBody>, WireError> {
    let mut raw = BytesMut::with_capacity(READ_SIZE);
    loop {
        if let Some((status, headers, len)) = parse_head(&raw)? {
            raw.advance(len);
            if status.is_informational() {
                continue;
            }
            let framing = framing(&headers)?;
            let mut response = Response::new(WatchBody { io, raw, framing });
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            return Ok(response);
        }
        if raw.len() >= MAX_HEAD {
            return Err(WireError::Head(format!(
                "no end of the response head in {MAX_HEAD} bytes"
            )));
        }
        raw.reserve(READ_SIZE);
        if std::future::poll_fn(|cx| tokio_util::io::poll_read_buf(io.as_mut(), cx, &mut raw))
            .await?
            == 0
        {
            return Err(WireError::Head(
                "the connection closed before the response head ended".into(),
            ));
        }
    }
}

/// The status, headers and length of a whole response head at the start of `raw`; `None` until
/// it is whole.
fn parse_head(raw: &[u8]) -> Result<Option<(StatusCode, HeaderMap, usize)>, WireError> {
    let mut slots = [httparse::EMPTY_HEADER; 100];
    let mut parsed = httparse::Response::new(&mut slots);
    let len = match parsed.parse(raw) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(WireError::Head(e.to_string())),
    };
    let code = parsed.code.unwrap_or_default();
    let status =
        StatusCode::from_u16(code).map_err(|_| WireError::Head(format!("status code {code}")))?;
    let mut headers = HeaderMap::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| WireError::Head(format!("header name {:?}", h.name)))?;
        let value = HeaderValue::from_bytes(h.value)
            .map_err(|_| WireError::Head(format!("the value of header {}", h.name)))?;
        headers.append(name, value);
    }
    Ok(Some((status, headers, len)))
}

/// How the body's end is told (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Chunked(Chunked),
    /// This many bytes left.
    Length(u64),
    /// To the connection's end.
    Close,
    Done,
}

fn framing(headers: &HeaderMap) -> Result<Framing, WireError> {
    let coding = headers
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .next_back();
    if let Some(coding) = coding {
        return match coding.eq_ignore_ascii_case("chunked") {
            true => Ok(Framing::Chunked(Chunked::Size)),
            false => Ok(Framing::Close),
        };
    }
    match headers.get(http::header::CONTENT_LENGTH) {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .map(Framing::Length)
            .ok_or_else(|| WireError::Head("a Content-Length that is not a number".into())),
        None => Ok(Framing::Close),
    }
}

/// A watch response's body, read on its connection: each poll reads what the connection holds
/// and returns it decoded, as one data frame.
pub struct WatchBody {
    io: Pin<Box<dyn Io>>,
    /// Bytes read and not yet decoded.
    raw: BytesMut,
    framing: Framing,
}

impl WatchBody {
    /// What `raw` holds of the body, taken from it; `None` when it holds none.
    fn take(&mut self) -> Result<Option<Bytes>, WireError> {
        let data = match &mut self.framing {
            Framing::Chunked(state) => {
                let (out, ended) = take_chunked(state, &mut self.raw)?;
                if ended {
                    self.framing = Framing::Done;
                }
                out
            }
            Framing::Length(left) => {
                let taken = held(&self.raw, *left);
                *left -= taken as u64;
                let data = self.raw.split_to(taken);
                if *left == 0 {
                    self.framing = Framing::Done;
                }
                data
            }
            Framing::Close => self.raw.split(),
            Framing::Done => BytesMut::new(),
        };
        Ok((!data.is_empty()).then(|| data.freeze()))
    }
}

impl http_body::Body for WatchBody {
    type Data = Bytes;
    type Error = WireError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, WireError>>> {
        let this = self.get_mut();
        loop {
            if let Some(data) = this.take()? {
                return Poll::Ready(Some(Ok(http_body::Frame::data(data))));
            }
            if this.framing == Framing::Done {
                return Poll::Ready(None);
            }
            if this.raw.capacity() - this.raw.len() < READ_SIZE / 4 {
                this.raw.reserve(READ_SIZE);
            }
            let read = ready!(tokio_util::io::poll_read_buf(
                this.io.as_mut(),
                cx,
                &mut this.raw
            ))?;
            if read == 0 {
                return match this.framing {
                    Framing::Close => {
                        this.framing = Framing::Done;
                        Poll::Ready(None)
                    }
                    _ => Poll::Ready(Some(Err(WireError::Closed))),
                };
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.framing == Framing::Done && self.raw.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_read_whole_and_its_framing_told() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n";
        assert!(parse_head(&head[..20]).unwrap().is_none());
        let (status, headers, len) = parse_head(head).unwrap().unwrap();
        assert_eq!((status, &head[len..]), (StatusCode::OK, &b"5\r\n"[..]));
        assert_eq!(framing(&headers).unwrap(), Framing::Chunked(Chunked::Size));
        let (_, headers, _) = parse_head(b"HTTP/1.1 410 Gone\r\ncontent-length: 12\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(framing(&headers).unwrap(), Framing::Length(12));
        let (_, headers, _) = parse_head(b"HTTP/1.1 500 x\r\n\r\n").unwrap().unwrap();
        assert_eq!(framing(&headers).unwrap(), Framing::Close);
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
    }

    #[test]
    fn the_request_head_carries_the_layers_headers_and_asks_to_close() {
        let req = Request::get("https://10.0.0.1:6443/api/v1/events?watch=true")
            .header("authorization", "Bearer t")
            .body(kube::client::Body::empty())
            .unwrap();
        let head = String::from_utf8(request_head(&req).unwrap()).unwrap();
        assert_eq!(
            head,
            "GET /api/v1/events?watch=true HTTP/1.1\r\nhost: 10.0.0.1:6443\r\n\
             authorization: Bearer t\r\nconnection: close\r\n\r\n"
        );
        let post = Request::post("https://h/x")
            .body(kube::client::Body::from(b"{}".to_vec()))
            .unwrap();
        assert!(matches!(request_head(&post), Err(WireError::NotAWatch)));
        let relative = Request::get("/api/v1/events")
            .body(kube::client::Body::empty())
            .unwrap();
        assert!(matches!(request_head(&relative), Err(WireError::NoHost(_))));
    }
}
