//! Framing on a QUIC stream: each message is a big-endian `u32` length and that many
//! bytes of postcard. The client sends one request frame and finishes its side; the
//! server answers with [`Envelope`] frames (one for a unary call, any number for a
//! subscription) and finishes its side.

use quinn::RecvStream;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::{RpcError, read_error};

/// Bytes of the length prefix.
const HEADER: usize = 4;

/// What the server sends on a call's stream.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Envelope<T> {
    /// A reply, or one item of a subscription.
    Item(T),
    /// The call failed; nothing follows.
    Fault(Fault),
}

/// Why the server failed a call, as sent on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Fault {
    /// The handler's error text.
    Handler(String),
    /// The request (or the handler's reply) exceeded the server's frame limit.
    FrameTooLarge { size: u64, max: u32 },
    /// The request did not decode as the service's request type.
    BadRequest(String),
}

impl From<Fault> for RpcError {
    fn from(fault: Fault) -> Self {
        match fault {
            Fault::Handler(text) => RpcError::Remote(text),
            Fault::FrameTooLarge { size, max } => RpcError::FrameTooLarge { size, max },
            Fault::BadRequest(text) => RpcError::BadRequest(text),
        }
    }
}

/// Serializes `value` into one frame, refusing one larger than `max` bytes.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T, max: u32) -> Result<Vec<u8>, RpcError> {
    let mut frame = postcard::to_extend(value, vec![0u8; HEADER])
        .map_err(|e| RpcError::Encode(e.to_string()))?;
    let size = frame.len() - HEADER;
    let too_large = RpcError::FrameTooLarge {
        size: size as u64,
        max,
    };
    let len = u32::try_from(size).map_err(|_| too_large.clone())?;
    if len > max {
        return Err(too_large);
    }
    frame[..HEADER].copy_from_slice(&len.to_be_bytes());
    Ok(frame)
}

/// Reads frames from a stream, one at a time, with at most `max` bytes each.
///
/// Cancel-safe: the bytes of a partly received frame stay in the reader, so
/// [`FrameReader::next`] can sit in a `select!`. Memory grows with the bytes that
/// actually arrive, never with what the length prefix claims.
#[derive(Debug)]
pub(crate) struct FrameReader {
    recv: RecvStream,
    header: [u8; HEADER],
    header_len: usize,
    body: Vec<u8>,
    max: u32,
    /// Who is on the other end, for error messages.
    peer: String,
}

impl FrameReader {
    pub(crate) fn new(recv: RecvStream, max: u32, peer: String) -> Self {
        FrameReader {
            recv,
            header: [0; HEADER],
            header_len: 0,
            body: Vec::new(),
            max,
            peer,
        }
    }

    /// The next frame's bytes; `None` when the peer finished the stream between frames.
    pub(crate) async fn next_bytes(&mut self) -> Result<Option<Vec<u8>>, RpcError> {
        loop {
            let (wanted, have) = if self.header_len < HEADER {
                (HEADER, self.header_len)
            } else {
                let len = u32::from_be_bytes(self.header);
                if len > self.max {
                    return Err(RpcError::FrameTooLarge {
                        size: u64::from(len),
                        max: self.max,
                    });
                }
                // len <= max <= u32::MAX fits in usize on every platform we build for.
                let len = len as usize;
                if self.body.len() == len {
                    self.header_len = 0;
                    return Ok(Some(std::mem::take(&mut self.body)));
                }
                (len, self.body.len())
            };
            match self.recv.read_chunk(wanted - have, true).await {
                Ok(Some(chunk)) if self.header_len < HEADER => {
                    let end = self.header_len + chunk.bytes.len();
                    self.header[self.header_len..end].copy_from_slice(&chunk.bytes);
                    self.header_len = end;
                }
                Ok(Some(chunk)) => self.body.extend_from_slice(&chunk.bytes),
                Ok(None) if self.header_len == 0 => return Ok(None),
                Ok(None) => {
                    return Err(RpcError::Closed(format!(
                        "{} ended the stream inside a message ({have} of {wanted} bytes)",
                        self.peer
                    )));
                }
                Err(e) => return Err(read_error(&self.peer, &e)),
            }
        }
    }

    /// The next frame decoded as `T`; `None` at the end of the stream.
    pub(crate) async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, RpcError> {
        match self.next_bytes().await? {
            Some(bytes) => postcard::from_bytes(&bytes)
                .map(Some)
                .map_err(|e| RpcError::Decode(e.to_string())),
            None => Ok(None),
        }
    }

    /// Tells the peer to stop sending (e.g. after refusing an oversized frame).
    pub(crate) fn stop(&mut self, code: u32) {
        let _ = self.recv.stop(code.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_prefixes_the_postcard_length() {
        let frame = encode(&("hi", 7u8), 1024).expect("fits");
        let body = postcard::to_stdvec(&("hi", 7u8)).expect("encode");
        assert_eq!(&frame[..4], &(body.len() as u32).to_be_bytes());
        assert_eq!(&frame[4..], &body[..]);
    }

    #[test]
    fn encode_refuses_more_than_max() {
        let big = vec![0u8; 100];
        assert_eq!(
            encode(&big, 50),
            Err(RpcError::FrameTooLarge { size: 101, max: 50 })
        );
        assert!(encode(&big, 101).is_ok());
    }
}
