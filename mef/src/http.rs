//! A small HTTP/1.1 server side (RFC 9112) for EST: request heads parsed with `httparse`,
//! Content-Length bodies only (a chunked request gets 411 Length Required: EST bodies are small
//! and every known EST client sends Content-Length), keep-alive by default for HTTP/1.1.

use std::io::{Read, Write};

/// Largest request head accepted (request line + headers).
pub const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;
/// Oversized bodies up to this size are read and discarded before the 413 answer.
const DRAIN_LIMIT: usize = 1024 * 1024;

/// A parsed request.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// Header names lower-cased, values as text (non-UTF-8 bytes replaced).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
}

impl Request {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A response to send.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Close the connection after this response (the request could not be framed safely).
    pub close: bool,
}

impl Response {
    /// A response with a body and its Content-Type.
    pub fn new(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body,
            close: false,
        }
    }

    /// A `text/plain` response (every EST error carries one, RFC 7030 4.2.3).
    pub fn text(status: u16, message: impl Into<String>) -> Response {
        let mut body = message.into();
        body.push('\n');
        Response::new(status, "text/plain; charset=utf-8", body.into_bytes())
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Marks the connection to be closed after this response.
    pub fn closing(mut self) -> Response {
        self.close = true;
        self
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Why no request could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the connection (or timed out) between requests: not an error.
    Closed,
    /// The request cannot be handled; answer this and close.
    Reject(Response),
    /// I/O failure mid-request.
    Io(std::io::Error),
}

/// Reads one request. `buf` keeps bytes read past the end of a request (pipelining).
pub fn read_request<S: Read + Write>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    max_body: usize,
) -> Result<Request, ReadError> {
    let mut chunk = [0u8; 4096];
    // Read until the head is complete.
    let (head_len, method, path, headers, minor) = loop {
        let mut hdrs = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut hdrs);
        match req.parse(buf) {
            // The limit is on the head itself (through its final CRLF CRLF), however the bytes
            // arrived: a read may bring more than the head, so the length is checked here and
            // not only while the head is incomplete.
            Ok(httparse::Status::Complete(n)) if n > MAX_HEAD => {
                return Err(ReadError::Reject(
                    Response::text(431, "request head too large").closing(),
                ));
            }
            Ok(httparse::Status::Complete(n)) => {
                let method = req.method.unwrap_or("").to_owned();
                let path = req.path.unwrap_or("").to_owned();
                let minor = req.version.unwrap_or(1);
                let headers: Vec<(String, String)> = req
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).trim().to_owned(),
                        )
                    })
                    .collect();
                break (n, method, path, headers, minor);
            }
            Ok(httparse::Status::Partial) => {
                // MAX_HEAD bytes without the end of the head: the head is longer than MAX_HEAD.
                if buf.len() >= MAX_HEAD {
                    return Err(ReadError::Reject(
                        Response::text(431, "request head too large").closing(),
                    ));
                }
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Err(ReadError::Reject(
                    Response::text(431, "too many request header fields").closing(),
                ))
            }
            Err(e) => {
                return Err(ReadError::Reject(
                    Response::text(400, format!("malformed HTTP request: {e}")).closing(),
                ))
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Err(ReadError::Closed),
            Ok(0) => {
                return Err(ReadError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if buf.is_empty()
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::UnexpectedEof
                    ) =>
            {
                return Err(ReadError::Closed)
            }
            Err(e) => return Err(ReadError::Io(e)),
        }
    };
    buf.drain(..head_len);
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let lengths: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n == "content-length")
        .map(|(_, v)| v.as_str())
        .collect();
    // RFC 9112 6.3 (request smuggling): a message with both Transfer-Encoding and
    // Content-Length is ambiguous; refuse it rather than pick one framing.
    if header("transfer-encoding").is_some() && !lengths.is_empty() {
        return Err(ReadError::Reject(
            Response::text(
                400,
                "ambiguous message framing: both Transfer-Encoding and Content-Length",
            )
            .closing(),
        ));
    }
    if header("transfer-encoding").is_some() {
        return Err(ReadError::Reject(
            Response::text(
                411,
                "chunked (Transfer-Encoding) request bodies are not supported: send Content-Length",
            )
            .closing(),
        ));
    }
    let content_length =
        match lengths.as_slice() {
            [] => 0,
            [v] => match parse_content_length(v) {
                Some(n) => n,
                None => return Err(ReadError::Reject(
                    Response::text(
                        400,
                        "malformed Content-Length: only ASCII digits are allowed (RFC 9110 8.6)",
                    )
                    .closing(),
                )),
            },
            // Even identical repeated values are refused: any doubt about the framing is a 400.
            _ => {
                return Err(ReadError::Reject(
                    Response::text(
                        400,
                        "ambiguous message framing: several Content-Length headers",
                    )
                    .closing(),
                ))
            }
        };
    if content_length > max_body {
        // Read and discard a moderately oversized body first, so that a client still sending it
        // sees the 413 instead of a connection reset; beyond DRAIN_LIMIT just close.
        if content_length <= DRAIN_LIMIT {
            let mut remaining = content_length.saturating_sub(buf.len());
            buf.clear();
            while remaining > 0 {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => remaining = remaining.saturating_sub(n),
                }
            }
        }
        return Err(ReadError::Reject(
            Response::text(
                413,
                format!(
                    "request body of {content_length} bytes exceeds the limit of {max_body} bytes"
                ),
            )
            .closing(),
        ));
    }
    // RFC 9110 10.1.1: a client waiting for 100 Continue (curl does for larger bodies) gets it
    // once the head is acceptable.
    if content_length > buf.len()
        && header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .and_then(|_| stream.flush())
            .map_err(ReadError::Io)?;
    }
    while buf.len() < content_length {
        match stream.read(&mut chunk) {
            Ok(0) => return Err(ReadError::Io(std::io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
    let body: Vec<u8> = buf.drain(..content_length).collect();
    let connection = header("connection").unwrap_or("").to_ascii_lowercase();
    let has = |token: &str| connection.split(',').any(|t| t.trim() == token);
    let keep_alive = if minor == 0 {
        has("keep-alive")
    } else {
        !has("close")
    };
    let path = path.split('?').next().unwrap_or("").to_owned();
    Ok(Request {
        method,
        path,
        headers,
        body,
        keep_alive,
    })
}

/// A Content-Length value: `1*DIGIT` (RFC 9110 8.6), nothing else. Rust's integer parser also
/// takes a leading `+`, which a front end may read differently (request smuggling), so the
/// digits are checked here first. A value that does not fit `usize` is refused too.
fn parse_content_length(value: &str) -> Option<usize> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// Writes a response; `keep_alive` decides the Connection header.
pub fn write_response<S: Write>(
    stream: &mut S,
    resp: &Response,
    keep_alive: bool,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (n, v) in &resp.headers {
        head.push_str(n);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
    head.push_str(if keep_alive {
        "Connection: keep-alive\r\n"
    } else {
        "Connection: close\r\n"
    });
    head.push_str("Cache-Control: no-store\r\n\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(&resp.body);
    stream.write_all(&out)?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads from a fixed input, collects what is written.
    struct Duplex<'a>(&'a [u8], Vec<u8>);
    impl Read for Duplex<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            self.0.read(out)
        }
    }
    impl Write for Duplex<'_> {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.1.write(b)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn answers_expect_continue() {
        let raw = b"POST /a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok";
        let mut d = Duplex(&raw[..], Vec::new());
        let r = read_request(&mut d, &mut Vec::new(), 10).unwrap();
        assert_eq!(r.body, b"ok");
        // The whole input arrived in one read, so no 100 Continue was needed.
        assert!(d.1.is_empty());
        let head = b"POST /a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
        let mut d = Duplex(&head[..], Vec::new());
        assert!(read_request(&mut d, &mut Vec::new(), 10).is_err());
        assert_eq!(d.1, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn parses_pipelined_requests() {
        let raw = b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b?x=1 HTTP/1.1\r\nConnection: close\r\n\r\n";
        let mut s = Duplex(&raw[..], Vec::new());
        let mut buf = Vec::new();
        let r = read_request(&mut s, &mut buf, 10).unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), &r.body[..]),
            ("POST", "/a", &b"abc"[..])
        );
        assert!(r.keep_alive);
        let r = read_request(&mut s, &mut buf, 10).unwrap();
        assert_eq!(r.path, "/b");
        assert!(!r.keep_alive);
        assert!(matches!(
            read_request(&mut s, &mut buf, 10),
            Err(ReadError::Closed)
        ));
    }

    fn status_of(raw: &[u8]) -> u16 {
        match read_request(&mut Duplex(raw, Vec::new()), &mut Vec::new(), 100) {
            Ok(_) => 200,
            Err(ReadError::Reject(r)) => r.status,
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn content_length_is_digits_only() {
        assert_eq!(
            status_of(b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nok"),
            200
        );
        assert_eq!(
            status_of(b"POST / HTTP/1.1\r\nContent-Length: 002\r\n\r\nok"),
            200
        );
        for bad in ["+2", "-2", "2 2", "0x2", "2,2", "", "18446744073709551617"] {
            let raw = format!("POST / HTTP/1.1\r\nContent-Length: {bad}\r\n\r\nok");
            assert_eq!(status_of(raw.as_bytes()), 400, "Content-Length: {bad}");
        }
        // Repeated (identical or not), and together with Transfer-Encoding: ambiguous.
        for raw in [
            &b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"[..],
            b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\nok",
        ] {
            assert_eq!(status_of(raw), 400);
        }
    }

    #[test]
    fn head_limit_is_exact() {
        // A head of exactly MAX_HEAD bytes is read; one byte more is refused, even when the
        // whole request arrives in reads that overshoot the limit.
        let head = |len: usize| {
            let start = b"GET / HTTP/1.1\r\nX: ";
            let end = b"\r\n\r\n";
            let mut v = start.to_vec();
            v.resize(len - end.len(), b'a');
            v.extend_from_slice(end);
            assert_eq!(v.len(), len);
            v
        };
        assert_eq!(status_of(&head(MAX_HEAD)), 200);
        assert_eq!(status_of(&head(MAX_HEAD + 1)), 431);
        assert_eq!(status_of(&head(MAX_HEAD + 100)), 431);
    }

    #[test]
    fn rejects_chunked_and_oversized() {
        let raw = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut buf = Vec::new();
        match read_request(&mut Duplex(&raw[..], Vec::new()), &mut buf, 10) {
            Err(ReadError::Reject(r)) => assert_eq!(r.status, 411),
            other => panic!("{other:?}"),
        }
        let raw = b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n";
        let mut buf = Vec::new();
        match read_request(&mut Duplex(&raw[..], Vec::new()), &mut buf, 10) {
            Err(ReadError::Reject(r)) => assert_eq!(r.status, 413),
            other => panic!("{other:?}"),
        }
    }
}
