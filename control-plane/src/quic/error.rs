//! [`RpcError`], and the translation of quinn's connection and stream errors into it.

use std::time::Duration;

use quinn::{ConnectionError, ReadError, WriteError};

/// Why a call, a subscription or a reply failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// The peer could not be reached: bad address, no route, no answer to the handshake.
    #[error("cannot connect to {target}: {reason}")]
    Connect { target: String, reason: String },
    /// The TLS handshake failed: one side did not accept the other's certificate, or the
    /// two speak different protocol versions.
    #[error("TLS with {target} failed: {reason}")]
    Refused { target: String, reason: String },
    /// No reply within the call's timeout. The request may still be processed.
    #[error("no reply within {0:?}; the request may still be processed")]
    Timeout(Duration),
    /// The connection or the stream went away mid-call. The request may or may not have
    /// been processed; the next call reconnects.
    #[error("{0}")]
    Closed(String),
    /// A message exceeds the frame limit of the side that refused it.
    #[error(
        "a message of {size} bytes exceeds the frame limit of {max} bytes; send less, or \
         raise max_frame on both sides"
    )]
    FrameTooLarge { size: u64, max: u32 },
    /// This side could not serialize a message.
    #[error("cannot encode the message: {0}")]
    Encode(String),
    /// A message from the peer does not decode as the expected type.
    #[error(
        "cannot decode the peer's message: {0}; are both sides running the same tongdai \
         version and calling the right method?"
    )]
    Decode(String),
    /// The peer could not decode our request.
    #[error("the peer could not decode the request: {0}; are both sides the same version?")]
    BadRequest(String),
    /// The peer's handler answered with an error.
    #[error("the peer answered with an error: {0}")]
    Remote(String),
    /// The peer's handler finished without answering.
    #[error("the peer ended the call without a reply")]
    NoReply,
}

/// QUIC carries TLS alerts as transport error codes `0x100 + alert`.
fn tls_alert(code: u64) -> Option<u8> {
    if (0x100..0x200).contains(&code) {
        u8::try_from(code - 0x100).ok()
    } else {
        None
    }
}

/// What a TLS alert received from the peer means for us.
fn alert_meaning(alert: u8) -> String {
    match alert {
        116 => "the peer requires a client certificate and we presented none".to_owned(),
        48 => "the peer does not know the CA of our certificate; is it issued by the cluster \
               CA the peer trusts?"
            .to_owned(),
        51 => "the peer could not verify our certificate's signature; is it issued by the \
               cluster CA the peer trusts?"
            .to_owned(),
        42 | 43 | 46 => "the peer rejected our certificate".to_owned(),
        44 => "the peer says our certificate is revoked".to_owned(),
        45 => "the peer says our certificate has expired (or the clocks disagree)".to_owned(),
        120 => "the peer does not speak tongdai/1 (ALPN mismatch: a different version?)".to_owned(),
        other => format!("the peer aborted the handshake (TLS alert {other})"),
    }
}

/// Translates a connection-level failure on a connection to `target`.
pub(crate) fn connection_error(target: &str, error: &ConnectionError) -> RpcError {
    let target = target.to_owned();
    match error {
        ConnectionError::TransportError(e) if tls_alert(u64::from(e.code)).is_some() => {
            RpcError::Refused {
                target,
                reason: format!(
                    "we refused the peer: {}; is its certificate issued by our cluster CA, \
                     and for a replica?",
                    e.reason
                ),
            }
        }
        ConnectionError::ConnectionClosed(close) => match tls_alert(u64::from(close.error_code)) {
            Some(alert) => RpcError::Refused {
                target,
                reason: alert_meaning(alert),
            },
            None => RpcError::Closed(format!("connection to {target} aborted: {close}")),
        },
        ConnectionError::ApplicationClosed(close) => RpcError::Closed(format!(
            "{target} closed the connection ({})",
            String::from_utf8_lossy(&close.reason)
        )),
        ConnectionError::Reset => RpcError::Closed(format!(
            "{target} restarted and no longer knows this connection; the request may or may \
             not have been processed"
        )),
        ConnectionError::TimedOut => {
            RpcError::Closed(format!("{target} stopped answering (idle timeout)"))
        }
        ConnectionError::LocallyClosed => {
            RpcError::Closed("this endpoint closed the connection".to_owned())
        }
        other => RpcError::Closed(format!("connection to {target} lost: {other}")),
    }
}

pub(crate) fn read_error(target: &str, error: &ReadError) -> RpcError {
    match error {
        ReadError::ConnectionLost(e) => connection_error(target, e),
        ReadError::Reset(code) => {
            RpcError::Closed(format!("{target} abandoned the call (stream reset {code})"))
        }
        other => RpcError::Closed(format!("reading from {target}: {other}")),
    }
}

pub(crate) fn write_error(target: &str, error: &WriteError) -> RpcError {
    match error {
        WriteError::ConnectionLost(e) => connection_error(target, e),
        WriteError::Stopped(code) => {
            RpcError::Closed(format!("{target} stopped reading the call (code {code})"))
        }
        other => RpcError::Closed(format!("writing to {target}: {other}")),
    }
}
