//! Helpers shared by the fuzz targets in `fuzz_targets/` (see `../FUZZING.md`).
//!
//! Several targets take more than one input (a header value and a body, a list of
//! certificates). They split the fuzzer's bytes with the small framings below rather than with
//! `arbitrary`, so the seed generator (`examples/fuzz-seeds.rs`) can write real server responses
//! in the same framing and the committed seeds stay readable.

/// Splits `data` at the first `\n`: the first line (a header value, without a trailing `\r`)
/// and the rest (a body). `None` when the line is not UTF-8: header values reach the parsers
/// as `&str` (ureq and the MEF's `httparse` front end both hand over text).
pub fn header_and_body(data: &[u8]) -> Option<(&str, &[u8])> {
    let (line, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Some((std::str::from_utf8(line).ok()?, body))
}

/// Writes the [`header_and_body`] framing.
pub fn frame_header_and_body(header: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len() + 1 + body.len());
    out.extend_from_slice(header.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

/// Splits `data` into records of a 2-byte big-endian length and that many bytes. A final short
/// record takes what is left, so every input yields something.
pub fn records(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
        let rest = &data[2..];
        let take = len.min(rest.len());
        out.push(&rest[..take]);
        data = &rest[take..];
    }
    out
}

/// Writes the [`records`] framing. Panics on a record over 65535 bytes (seeds are small).
pub fn frame_records(items: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items {
        let len = u16::try_from(item.len()).expect("record too long for the framing");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(item);
    }
    out
}

/// A `Read + Write` stream over fuzzer bytes for the MEF's HTTP reader: reads come in chunks
/// whose sizes cycle through `chunks` (so request heads split at arbitrary points are
/// exercised), writes (the `100 Continue` interim answer) are counted and dropped.
pub struct ChunkedStream<'a> {
    data: &'a [u8],
    chunks: Vec<usize>,
    next_chunk: usize,
    /// Bytes the reader wrote back.
    pub written: usize,
}

impl<'a> ChunkedStream<'a> {
    /// A stream yielding `data` in reads of the given sizes (zero sizes count as one byte).
    pub fn new(data: &'a [u8], chunks: &[u8]) -> ChunkedStream<'a> {
        let mut chunks: Vec<usize> = chunks.iter().map(|&c| usize::from(c).max(1) * 16).collect();
        if chunks.is_empty() {
            chunks.push(4096);
        }
        ChunkedStream {
            data,
            chunks,
            next_chunk: 0,
            written: 0,
        }
    }
}

impl std::io::Read for ChunkedStream<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let chunk = self.chunks[self.next_chunk % self.chunks.len()];
        self.next_chunk += 1;
        let n = chunk.min(out.len()).min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

impl std::io::Write for ChunkedStream<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.written += b.len();
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framings_roundtrip() {
        let framed = frame_records(&[b"abc", b"", b"de"]);
        assert_eq!(records(&framed), vec![&b"abc"[..], b"", b"de"]);
        assert_eq!(records(&[0, 5, 1, 2]), vec![&[1u8, 2][..]]);
        let f = frame_header_and_body("text/plain; a=b", b"x\ny");
        assert_eq!(header_and_body(&f), Some(("text/plain; a=b", &b"x\ny"[..])));
        assert_eq!(header_and_body(b"a\r\nb"), Some(("a", &b"b"[..])));
        assert_eq!(header_and_body(b"\xff\nb"), None);
    }
}
