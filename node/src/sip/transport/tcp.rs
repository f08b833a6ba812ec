//! The TCP listener: frames messages by Content-Length (RFC 3261 18.3), answers
//! double-CRLF keep-alives (RFC 5626 4.4.1), bounds connections and idle time. Each
//! connection has a reader (this task) and a writer fed through [`Outbound`], so
//! responses and retransmissions reach the connection a request came on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};

use super::{Inbound, MessageHandler, Outbound, TransportKind};
use crate::sip::parse::parse_stream;

#[derive(Debug, Clone, Copy)]
pub struct TcpOptions {
    pub max_size: usize,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

pub async fn serve<H: MessageHandler>(
    listener: TcpListener,
    handler: Arc<H>,
    outbound: Outbound,
    opts: TcpOptions,
    shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(opts.max_connections));
    let mut stop = shutdown.clone();
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!("tcp accept failed: {e}");
                    continue;
                }
            },
            _ = stop.wait_for(|s| *s) => return,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "tcp connection refused: sip.max_tcp_connections reached");
            continue; // dropping the stream closes it
        };
        let _ = stream.set_nodelay(true);
        let (handler, outbound, shutdown) = (handler.clone(), outbound.clone(), shutdown.clone());
        tokio::spawn(async move {
            let queue = outbound.add_connection(peer);
            connection(stream, peer, handler, &outbound, queue, opts, shutdown).await;
            outbound.remove_connection(peer);
            drop(permit);
        });
    }
}

async fn writer(mut half: OwnedWriteHalf, mut queue: mpsc::Receiver<Bytes>) {
    while let Some(bytes) = queue.recv().await {
        if half.write_all(&bytes).await.is_err() {
            return;
        }
    }
    let _ = half.shutdown().await;
}

async fn connection<H: MessageHandler>(
    stream: TcpStream,
    peer: SocketAddr,
    handler: Arc<H>,
    outbound: &Outbound,
    queue: mpsc::Receiver<Bytes>,
    opts: TcpOptions,
    mut shutdown: watch::Receiver<bool>,
) {
    let (mut read, write) = stream.into_split();
    let writer = tokio::spawn(writer(write, queue));
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    'conn: loop {
        // Drain every complete message already buffered.
        loop {
            let crlfs = buf
                .iter()
                .take_while(|b| **b == b'\r' || **b == b'\n')
                .count();
            if crlfs > 0 {
                let ping = buf.starts_with(b"\r\n\r\n");
                buf.drain(..crlfs);
                // The pong goes through the writer so it never lands inside a message.
                if ping {
                    outbound.send(peer, TransportKind::Tcp, Bytes::from_static(b"\r\n"));
                }
            }
            match parse_stream(&buf, opts.max_size) {
                Ok(Some((msg, used))) => {
                    buf.drain(..used);
                    handler
                        .handle(Inbound::Message(msg), peer, TransportKind::Tcp)
                        .await;
                }
                Ok(None) => break,
                Err(error) => {
                    // Framing is lost: answer if we can, then close.
                    let raw = std::mem::take(&mut buf);
                    let inbound = Inbound::Malformed { error, raw };
                    handler.handle(inbound, peer, TransportKind::Tcp).await;
                    break 'conn;
                }
            }
        }
        let n = tokio::select! {
            r = tokio::time::timeout(opts.idle_timeout, read.read(&mut chunk)) => match r {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                Ok(Ok(n)) => n,
            },
            _ = shutdown.wait_for(|s| *s) => break,
        };
        buf.extend_from_slice(&chunk[..n]);
    }
    // Let queued responses go out before the connection closes: the writer ends when the
    // last sender (the registry entry, removed by our caller) is dropped.
    drop(writer);
}
