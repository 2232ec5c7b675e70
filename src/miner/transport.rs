//! One request per TCP connection, with every read bounded.
//!
//! cgminer reads the request with a single `recv()`, answers, appends a NUL and closes. Not every
//! server does all of that: some keep the socket open, some end with `\n`, some send a
//! pretty-printed reply in several segments that end with `\n` at a token boundary (C-12). So
//! the reply ends at the first of: a NUL byte (dropped with anything after it), EOF, or a buffer
//! that already holds one complete JSON value followed by a short silence. A bare `\n` never ends
//! a reply. Everything is capped: connect time, total read time, and reply size (an error, never
//! a silent truncation). The socket is dropped as soon as the reply is in, so one request never
//! holds more than one socket and nothing outlives the call.
//!
//! Whatsminer API v3 (port 4433) frames both directions as a 4-byte little-endian length and
//! the JSON bytes: [`exchange_prefixed`] writes that frame and reads one back, under the same
//! bounds (a length over the size limit is refused before anything is read).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use super::Limits;

/// How long a complete-looking reply must be followed by silence before we stop waiting for a
/// NUL or EOF that may never come.
pub const SETTLE: Duration = Duration::from_millis(50);

/// First allocation for a reply: holds a whole Antminer `stats` reply (~6 KB) in one go.
const INITIAL_CAPACITY: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("connect failed: {0}")]
    Connect(#[source] io::Error),
    #[error("no reply within the deadline ({0})")]
    Timeout(&'static str),
    #[error("i/o error: {0}")]
    Io(#[source] io::Error),
    #[error("reply larger than {0} bytes")]
    TooLarge(usize),
    #[error("connection closed without a reply")]
    Empty,
}

/// Sends `request` (one JSON object, written in one piece) and returns the raw reply without
/// its NUL terminator. Nothing runs past `deadline`, whatever the miner does.
pub async fn exchange(
    addr: SocketAddr,
    request: &[u8],
    limits: &Limits,
    deadline: Instant,
) -> Result<Vec<u8>, TransportError> {
    let (mut stream, read_until) = connect_and_send(addr, request, limits, deadline).await?;
    let reply = read_reply(&mut stream, limits.max_reply_bytes, read_until, &[]).await;
    // We have what we came for (or an error): close our side now rather than wait for the peer.
    drop(stream);
    reply
}

/// Whatsminer API v3: sends `request` behind its 4-byte little-endian length and returns the
/// JSON of the one framed reply. A server that answers with bare JSON instead (no prefix) is
/// read the cgminer way.
pub async fn exchange_prefixed(
    addr: SocketAddr,
    request: &[u8],
    limits: &Limits,
    deadline: Instant,
) -> Result<Vec<u8>, TransportError> {
    let len =
        u32::try_from(request.len()).map_err(|_| TransportError::TooLarge(u32::MAX as usize))?;
    let mut framed = Vec::with_capacity(request.len() + 4);
    framed.extend_from_slice(&len.to_le_bytes());
    framed.extend_from_slice(request);
    let (mut stream, read_until) = connect_and_send(addr, &framed, limits, deadline).await?;
    let reply = read_prefixed(&mut stream, limits.max_reply_bytes, read_until).await;
    drop(stream);
    reply
}

async fn connect_and_send(
    addr: SocketAddr,
    request: &[u8],
    limits: &Limits,
    deadline: Instant,
) -> Result<(TcpStream, Instant), TransportError> {
    let connect_until = deadline.min(Instant::now() + limits.connect_timeout);
    let mut stream = match timeout_at(connect_until, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(TransportError::Connect(e)),
        Err(_) => return Err(TransportError::Timeout("connect")),
    };
    let read_until = deadline.min(Instant::now() + limits.read_timeout);
    match timeout_at(read_until, stream.write_all(request)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(TransportError::Io(e)),
        Err(_) => return Err(TransportError::Timeout("write")),
    }
    Ok((stream, read_until))
}

async fn read_prefixed(
    stream: &mut TcpStream,
    max: usize,
    read_until: Instant,
) -> Result<Vec<u8>, TransportError> {
    let mut head = [0u8; 4];
    let mut got = 0;
    while got < head.len() {
        match timeout_at(read_until, stream.read(&mut head[got..])).await {
            Err(_) => return Err(TransportError::Timeout("read")),
            Ok(Ok(0)) if got == 0 => return Err(TransportError::Empty),
            Ok(Ok(0)) => return Err(TransportError::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(Ok(n)) => got += n,
            Ok(Err(e)) => return Err(TransportError::Io(e)),
        }
        // A bare JSON reply starts with `{` (or blanks): no length prefix to read.
        if head[0] == b'{' || head[0].is_ascii_whitespace() {
            return read_reply(stream, max, read_until, &head[..got]).await;
        }
    }
    let len = u32::from_le_bytes(head) as usize;
    if len > max {
        return Err(TransportError::TooLarge(max));
    }
    let mut body = vec![0u8; len];
    match timeout_at(read_until, stream.read_exact(&mut body)).await {
        Err(_) => Err(TransportError::Timeout("read")),
        Ok(Ok(_)) => Ok(body),
        Ok(Err(e)) => Err(TransportError::Io(e)),
    }
}

/// Reads one reply; `already` holds bytes of it read by the caller.
async fn read_reply(
    stream: &mut TcpStream,
    max: usize,
    read_until: Instant,
    already: &[u8],
) -> Result<Vec<u8>, TransportError> {
    let mut buf: Vec<u8> = Vec::with_capacity(INITIAL_CAPACITY.min(max.saturating_add(1)));
    let mut framer = Framer::default();
    buf.extend_from_slice(already);
    framer.feed(already);
    loop {
        let wait_until = if framer.complete() {
            read_until.min(Instant::now() + SETTLE)
        } else {
            read_until
        };
        // Never read more than one byte past the limit: that byte is enough to know.
        let room = max.saturating_add(1).saturating_sub(buf.len()).max(1);
        buf.reserve(room.min(INITIAL_CAPACITY));
        let start = buf.len();
        let mut limited = (&mut *stream).take(room as u64);
        match timeout_at(wait_until, limited.read_buf(&mut buf)).await {
            Err(_) if framer.complete() => break,
            Err(_) => return Err(TransportError::Timeout("read")),
            Ok(Ok(0)) => break,
            Ok(Ok(_)) => {
                let fresh = &buf[start..];
                if let Some(nul) = fresh.iter().position(|&b| b == 0) {
                    buf.truncate(start + nul);
                    break;
                }
                if buf.len() > max {
                    return Err(TransportError::TooLarge(max));
                }
                framer.feed(&buf[start..]);
            }
            // A reset right after a complete reply is how some servers close.
            Ok(Err(_)) if framer.complete() => break,
            Ok(Err(e)) => return Err(TransportError::Io(e)),
        }
    }
    if buf.iter().all(u8::is_ascii_whitespace) {
        return Err(TransportError::Empty);
    }
    Ok(buf)
}

/// Feeds `chunks` to a framer and says whether it saw one complete reply (for tests).
#[cfg(test)]
pub(crate) fn framed_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> bool {
    let mut f = Framer::default();
    for c in chunks {
        f.feed(c);
    }
    f.complete()
}

/// Tells, incrementally and in O(n) over the whole reply, whether the bytes so far hold one
/// complete JSON value (brackets balanced outside string literals), or a text-form reply that
/// ends with its section separator `|`.
#[derive(Debug, Default)]
struct Framer {
    state: FramerState,
    depth: usize,
    in_string: bool,
    escaped: bool,
    text_ends_with_pipe: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum FramerState {
    #[default]
    Start,
    Json,
    Text,
    Done,
}

impl Framer {
    fn complete(&self) -> bool {
        self.state == FramerState::Done
            || (self.state == FramerState::Text && self.text_ends_with_pipe)
    }

    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match self.state {
                FramerState::Done => return,
                FramerState::Start => match b {
                    b'{' | b'[' => {
                        self.state = FramerState::Json;
                        self.depth = 1;
                    }
                    b if b.is_ascii_whitespace() => {}
                    _ => {
                        self.state = FramerState::Text;
                        self.text_ends_with_pipe = b == b'|';
                    }
                },
                FramerState::Text => {
                    if !b.is_ascii_whitespace() {
                        self.text_ends_with_pipe = b == b'|';
                    }
                }
                FramerState::Json => {
                    if self.in_string {
                        if self.escaped {
                            self.escaped = false;
                        } else if b == b'\\' {
                            self.escaped = true;
                        } else if b == b'"' {
                            self.in_string = false;
                        }
                        continue;
                    }
                    match b {
                        b'"' => self.in_string = true,
                        b'{' | b'[' => self.depth += 1,
                        b'}' | b']' => {
                            self.depth = self.depth.saturating_sub(1);
                            if self.depth == 0 {
                                self.state = FramerState::Done;
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn framed(parts: &[&str]) -> bool {
        let mut f = Framer::default();
        for p in parts {
            f.feed(p.as_bytes());
        }
        f.complete()
    }

    #[test]
    fn framer() {
        assert!(framed(&["{\"a\":1}"]));
        assert!(!framed(&["{\n\"STATUS\":[{\"STATUS\":\"S\"}],\n"]));
        assert!(framed(&[
            "{\n\"STATUS\":[{\"STATUS\":\"S\"}],\n",
            "\"id\":1\n}\n"
        ]));
        assert!(!framed(&["{\"a\":\"}\"", "x"]));
        assert!(framed(&["{\"a\":\"\\\"}\"", "}"]));
        assert!(framed(&["[{}{}]"]));
        assert!(!framed(&["STATUS=S,Code=22"]));
        assert!(framed(&["STATUS=S,Code=22|VERSION,API=3.7|\n"]));
        assert!(!framed(&[""]));
    }
}
