//! The TCP listener: frames messages by Content-Length (RFC 3261 18.3), answers
//! double-CRLF keep-alives (RFC 5626 4.4.1), bounds connections and idle time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use super::{Inbound, MessageHandler, TransportKind};
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
        let (handler, shutdown) = (handler.clone(), shutdown.clone());
        tokio::spawn(async move {
            connection(stream, peer, handler, opts, shutdown).await;
            drop(permit);
        });
    }
}

async fn connection<H: MessageHandler>(
    mut stream: TcpStream,
    peer: SocketAddr,
    handler: Arc<H>,
    opts: TcpOptions,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        // Drain every complete message already buffered.
        loop {
            let crlfs = buf.iter().take_while(|b| **b == b'\r' || **b == b'\n').count();
            if crlfs > 0 {
                let ping = buf.starts_with(b"\r\n\r\n");
                buf.drain(..crlfs);
                if ping && stream.write_all(b"\r\n").await.is_err() {
                    return;
                }
            }
            match parse_stream(&buf, opts.max_size) {
                Ok(Some((msg, used))) => {
                    buf.drain(..used);
                    let reply = handler
                        .handle(Inbound::Message(msg), peer, TransportKind::Tcp)
                        .await;
                    if let Some(out) = reply
                        && stream.write_all(&out.bytes).await.is_err()
                    {
                        return;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    // Framing is lost: answer if we can, then close.
                    let raw = std::mem::take(&mut buf);
                    let inbound = Inbound::Malformed { error, raw };
                    if let Some(out) = handler.handle(inbound, peer, TransportKind::Tcp).await {
                        let _ = stream.write_all(&out.bytes).await;
                    }
                    let _ = stream.shutdown().await;
                    return;
                }
            }
        }
        let n = tokio::select! {
            r = tokio::time::timeout(opts.idle_timeout, stream.read(&mut chunk)) => match r {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
                Ok(Ok(n)) => n,
            },
            _ = shutdown.wait_for(|s| *s) => return,
        };
        buf.extend_from_slice(&chunk[..n]);
    }
}
