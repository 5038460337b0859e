//! NETCONF message framing over SSH (RFC 6242 §4): end-of-message
//! (`]]>]]>`, base:1.0) and chunked framing (base:1.1).
//!
//! A pure codec without I/O: bytes go in with [`Decoder::extend`], whole
//! messages come out of [`Decoder::next_message`]. A partial message is a
//! normal state (`Ok(None)`), not an error.

/// The end-of-message marker of base:1.0.
pub const EOM: &[u8] = b"]]>]]>";

/// Framing mechanism in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `]]>]]>` after each message (hello, and base:1.0 sessions).
    EndOfMessage,
    /// `\n#LEN\n` chunks, `\n##\n` ends a message (base:1.1).
    Chunked,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The message exceeds the configured maximum size.
    #[error("message larger than {max} bytes")]
    TooBig { max: usize },
    /// The byte stream is not valid chunked framing.
    #[error("invalid chunked framing: {0}")]
    Invalid(&'static str),
}

/// Chunk header: `\n#` then 1–10 digits then `\n` (chunk-size ≤ 4294967295).
const MAX_HEADER: usize = 2 + 10 + 1;

/// Where the chunked decoder is inside a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a chunk header or the end-of-chunks marker.
    Header,
    /// Inside a chunk with this many bytes still to come.
    Data(usize),
}

/// Incremental decoder for one session's input.
#[derive(Debug)]
pub struct Decoder {
    framing: Framing,
    max: usize,
    /// Unconsumed input; `pos` is where it starts, so consuming is cheap.
    buf: Vec<u8>,
    pos: usize,
    /// EOM: how far `buf[pos..]` was already searched for the marker.
    scanned: usize,
    /// Chunked: the message assembled so far and the position in it.
    msg: Vec<u8>,
    state: ChunkState,
    /// Chunked: the current message turned out to be EOM-framed (a client
    /// that sends its first message before it switched framing).
    eom_fallback: bool,
}

impl Decoder {
    /// A decoder starting in end-of-message framing (the hello exchange).
    pub fn new(max: usize) -> Self {
        Decoder {
            framing: Framing::EndOfMessage,
            max,
            buf: Vec::new(),
            pos: 0,
            scanned: 0,
            msg: Vec::new(),
            state: ChunkState::Header,
            eom_fallback: false,
        }
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Switches framing between messages (after the hellos).
    pub fn set_framing(&mut self, framing: Framing) {
        self.framing = framing;
        self.scanned = 0;
        self.msg.clear();
        self.state = ChunkState::Header;
        self.eom_fallback = false;
    }

    /// Adds received bytes.
    pub fn extend(&mut self, data: &[u8]) {
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes received but not yet part of a returned message.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos + self.msg.len()
    }

    /// The next whole message, `Ok(None)` if more input is needed.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        match self.framing {
            Framing::EndOfMessage => self.next_eom(),
            Framing::Chunked => self.next_chunked(),
        }
    }

    fn next_eom(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let input = &self.buf[self.pos..];
        // Resume the search a little before where it stopped: the marker
        // may straddle two reads.
        let from = self.scanned.saturating_sub(EOM.len() - 1);
        match find(&input[from..], EOM) {
            Some(i) => {
                let end = from + i;
                if end > self.max {
                    return Err(FrameError::TooBig { max: self.max });
                }
                let msg = input[..end].to_vec();
                self.pos += end + EOM.len();
                self.scanned = 0;
                Ok(Some(msg))
            }
            None => {
                self.scanned = input.len();
                if input.len() > self.max + EOM.len() {
                    return Err(FrameError::TooBig { max: self.max });
                }
                Ok(None)
            }
        }
    }

    fn next_chunked(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        loop {
            if self.eom_fallback {
                let r = self.next_eom();
                if let Ok(Some(_)) = r {
                    self.eom_fallback = false;
                }
                return r;
            }
            let input = &self.buf[self.pos..];
            match self.state {
                ChunkState::Header => {
                    if self.msg.is_empty() {
                        // Between messages: tolerate whitespace, and a
                        // message that starts with `<` was framed with EOM
                        // by a client that had not switched yet.
                        let ws = input
                            .iter()
                            .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                            .count();
                        let skip = match input.get(ws) {
                            Some(b'#') => ws.saturating_sub(1),
                            // All whitespace so far: keep a trailing `\n`,
                            // it may start the next chunk header.
                            None if input.last() == Some(&b'\n') => ws - 1,
                            _ => ws,
                        };
                        if skip > 0 {
                            self.pos += skip;
                            continue;
                        }
                        if input.first() == Some(&b'<') {
                            self.eom_fallback = true;
                            self.scanned = 0;
                            continue;
                        }
                    }
                    if input.len() < 4 {
                        if input.first().is_some_and(|b| *b != b'\n')
                            || input.get(1).is_some_and(|b| *b != b'#')
                        {
                            return Err(FrameError::Invalid("expected chunk header"));
                        }
                        return Ok(None);
                    }
                    if !input.starts_with(b"\n#") {
                        return Err(FrameError::Invalid("expected chunk header"));
                    }
                    if input[2] == b'#' {
                        if input[3] != b'\n' {
                            return Err(FrameError::Invalid("bad end-of-chunks marker"));
                        }
                        self.pos += 4;
                        if self.msg.is_empty() {
                            return Err(FrameError::Invalid("message without chunks"));
                        }
                        return Ok(Some(std::mem::take(&mut self.msg)));
                    }
                    let digits = input[2..]
                        .iter()
                        .take(MAX_HEADER - 2)
                        .take_while(|b| b.is_ascii_digit())
                        .count();
                    match input.get(2 + digits) {
                        None if digits <= 10 => return Ok(None),
                        Some(b'\n') if digits > 0 && digits <= 10 => {}
                        _ => return Err(FrameError::Invalid("bad chunk size")),
                    }
                    if input[2] == b'0' {
                        return Err(FrameError::Invalid("chunk size with leading zero"));
                    }
                    let size: u64 = std::str::from_utf8(&input[2..2 + digits])
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or(FrameError::Invalid("bad chunk size"))?;
                    if size > u64::from(u32::MAX) {
                        return Err(FrameError::Invalid("chunk size above 4294967295"));
                    }
                    let size =
                        usize::try_from(size).map_err(|_| FrameError::TooBig { max: self.max })?;
                    if self.msg.len().saturating_add(size) > self.max {
                        return Err(FrameError::TooBig { max: self.max });
                    }
                    self.pos += 2 + digits + 1;
                    self.state = ChunkState::Data(size);
                }
                ChunkState::Data(remaining) => {
                    if input.is_empty() {
                        return Ok(None);
                    }
                    let n = remaining.min(input.len());
                    self.msg.extend_from_slice(&input[..n]);
                    self.pos += n;
                    self.state = if n == remaining {
                        ChunkState::Header
                    } else {
                        ChunkState::Data(remaining - n)
                    };
                }
            }
        }
    }
}

/// Frames one outgoing message.
pub fn encode(framing: Framing, msg: &[u8], out: &mut Vec<u8>) {
    match framing {
        Framing::EndOfMessage => {
            out.extend_from_slice(msg);
            out.extend_from_slice(EOM);
        }
        Framing::Chunked => {
            // One chunk per message; chunk sizes may not exceed u32::MAX.
            for chunk in msg.chunks(u32::MAX as usize) {
                out.extend_from_slice(format!("\n#{}\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
            }
            out.extend_from_slice(b"\n##\n");
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(d: &mut Decoder) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut v = Vec::new();
        while let Some(m) = d.next_message()? {
            v.push(m);
        }
        Ok(v)
    }

    #[test]
    fn eom_split_anywhere() {
        let stream = b"<a/>]]>]]><b/>]]>]]>";
        for split in 0..stream.len() {
            let mut d = Decoder::new(1024);
            d.extend(&stream[..split]);
            let mut got = all(&mut d).unwrap();
            d.extend(&stream[split..]);
            got.extend(all(&mut d).unwrap());
            assert_eq!(
                got,
                vec![b"<a/>".to_vec(), b"<b/>".to_vec()],
                "split {split}"
            );
        }
    }

    #[test]
    fn chunked_byte_by_byte() {
        let stream = b"\n#4\n<rpc\n#3\n/>x\n##\n\n#2\nab\n##\n";
        let mut d = Decoder::new(1024);
        d.set_framing(Framing::Chunked);
        let mut got = Vec::new();
        for b in stream.iter() {
            d.extend(&[*b]);
            got.extend(all(&mut d).unwrap());
        }
        assert_eq!(got, vec![b"<rpc/>x".to_vec(), b"ab".to_vec()]);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn chunked_errors() {
        for bad in [
            &b"\n#0\n\n##\n"[..],
            b"\n#01\nx\n##\n",
            b"\n#x\n",
            b"\n##\n",
            b"xx",
            b"\n#99999999999\n",
            b"\n#5 \n",
        ] {
            let mut d = Decoder::new(1 << 20);
            d.set_framing(Framing::Chunked);
            d.extend(bad);
            assert!(
                d.next_message().is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn chunked_accepts_eom_message_first() {
        // A client that sends one more EOM message before switching.
        let mut d = Decoder::new(1024);
        d.set_framing(Framing::Chunked);
        d.extend(b"\n<rpc/>]]>]]>\n#2\nab\n##\n");
        assert_eq!(
            all(&mut d).unwrap(),
            vec![b"<rpc/>".to_vec(), b"ab".to_vec()]
        );
    }

    #[test]
    fn too_big() {
        let mut d = Decoder::new(10);
        d.extend(&[b'x'; 17]);
        assert_eq!(d.next_message(), Err(FrameError::TooBig { max: 10 }));
        let mut d = Decoder::new(10);
        d.set_framing(Framing::Chunked);
        d.extend(b"\n#6\nabcdef\n#6\n");
        assert_eq!(d.next_message(), Err(FrameError::TooBig { max: 10 }));
        // Exactly max is fine.
        let mut d = Decoder::new(10);
        d.extend(b"0123456789]]>]]>");
        assert_eq!(d.next_message().unwrap().unwrap().len(), 10);
    }

    #[test]
    fn encode_roundtrip() {
        let mut out = Vec::new();
        encode(Framing::Chunked, b"<ok/>", &mut out);
        assert_eq!(out, b"\n#5\n<ok/>\n##\n");
        let mut d = Decoder::new(100);
        d.set_framing(Framing::Chunked);
        d.extend(&out);
        assert_eq!(d.next_message().unwrap().unwrap(), b"<ok/>");
    }
}
