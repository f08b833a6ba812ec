//! The UDP listener: one receive loop per socket, one task per datagram so a slow
//! request (e.g. waiting on a store commit) never holds up the next.

use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::watch;

use super::{Inbound, MessageHandler, TransportKind};
use crate::sip::parse::{parse_datagram_limited, skip_leading_crlf};

/// Receives until `shutdown` turns true. Datagrams larger than `max_size` are answered
/// 513 (when they carry enough of a request to answer) and otherwise dropped.
pub async fn serve<H: MessageHandler>(
    socket: Arc<UdpSocket>,
    handler: Arc<H>,
    max_size: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    // One byte more than allowed, so an oversized datagram is seen as such.
    let mut buf = vec![0u8; max_size + 1];
    loop {
        let (n, source) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(v) => v,
                // ICMP port unreachable from an earlier send surfaces here on Linux;
                // it concerns that peer, not this socket.
                Err(e) => {
                    tracing::debug!("udp recv error: {e}");
                    continue;
                }
            },
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let data = &buf[..n];
        if skip_leading_crlf(data).is_empty() {
            continue; // CRLF keep-alive
        }
        // Parse in the task, not here: this loop only drains the socket, so a burst
        // is spread over every worker thread instead of queueing in the kernel buffer.
        let data = data.to_vec();
        let handler = handler.clone();
        tokio::spawn(async move {
            let inbound = match parse_datagram_limited(&data, max_size) {
                Ok(msg) => Inbound::Message(msg),
                Err(error) => Inbound::Malformed { error, raw: data },
            };
            handler.handle(inbound, source, TransportKind::Udp).await;
        });
    }
}
