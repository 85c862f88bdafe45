//! The MEF's HTTP/1.1 request reader (`onem2m_mef::http::read_request`): request heads from
//! `httparse`, Content-Length framing, `Expect: 100-continue`, pipelining, limits. Input: one
//! byte choosing read sizes, then the bytes a client sends. Reading never panics; requests are
//! read until the reader refuses or the stream ends, and every body respects the limit.
#![no_main]

use est_fuzz::ChunkedStream;
use libfuzzer_sys::fuzz_target;
use onem2m_mef::http::{read_request, ReadError};

const MAX_BODY: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&sizes, wire)) = data.split_first() else {
        return;
    };
    let chunks = [sizes, sizes.rotate_left(3), 1, sizes ^ 0x5a];
    let mut stream = ChunkedStream::new(wire, &chunks);
    let mut buf = Vec::new();
    // A request consumes at least its head, so this ends; the bound is a safety net.
    for _ in 0..64 {
        match read_request(&mut stream, &mut buf, MAX_BODY) {
            Ok(req) => {
                assert!(req.body.len() <= MAX_BODY, "body over the limit");
                let _ = req.header("content-type");
            }
            Err(ReadError::Reject(resp)) => {
                assert!((400..600).contains(&resp.status), "status {}", resp.status);
                break;
            }
            Err(ReadError::Closed | ReadError::Io(_)) => break,
        }
    }
});
