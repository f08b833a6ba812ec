//! [`Client`]: typed calls and subscriptions to one peer over one reused connection.
//!
//! Each call is its own bidirectional stream, so calls run concurrently over the
//! connection. The connection is dialed on first use and redialed when it is found dead.
//!
//! Retry rule: a request is never sent twice. If the connection is already known to be
//! closed, or a stream cannot be opened on it, nothing was sent, so the client redials
//! and goes on. If the connection breaks after the request left, the call fails with
//! [`RpcError::Closed`] (the peer may or may not have processed it) and the next call
//! redials; retrying is the caller's decision (Raft RPCs are safe to retry).

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use super::certs::CLUSTER_NAME;
use super::endpoint::RpcEndpoint;
use super::error::{RpcError, connection_error, write_error};
use super::frame::{self, Envelope, FrameReader};
use super::tls::{Peer, peer_of};

/// A handle for calling one peer. Cheap to clone; clones share the connection.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    endpoint: RpcEndpoint,
    target: String,
    /// The current connection and who is on the other end. The lock is held while
    /// dialing, so concurrent callers wait for one handshake instead of starting many.
    live: Mutex<Option<Live>>,
}

#[derive(Debug, Clone)]
struct Live {
    connection: quinn::Connection,
    server: Peer,
}

impl Client {
    pub(crate) fn new(endpoint: RpcEndpoint, target: String) -> Client {
        Client {
            inner: Arc::new(Inner {
                endpoint,
                target,
                live: Mutex::new(None),
            }),
        }
    }

    /// The `host:port` this client dials.
    pub fn target(&self) -> &str {
        &self.inner.target
    }

    /// Makes sure a connection is up and returns the server's verified identity (check
    /// its name when you expect a particular replica at this address).
    pub async fn connect(&self) -> Result<Peer, RpcError> {
        let connect_timeout = self.inner.endpoint.options.connect_timeout;
        tokio::time::timeout(connect_timeout, self.live())
            .await
            .map_err(|_| self.no_answer(connect_timeout))?
            .map(|live| live.server)
    }

    /// Sends `request` and waits for one reply, all within `timeout` (dialing included).
    pub async fn call<Req, Resp>(&self, request: &Req, timeout: Duration) -> Result<Resp, RpcError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let frame = frame::encode(request, self.inner.endpoint.options.max_frame)?;
        tokio::time::timeout(timeout, async {
            let (send, mut reader) = self.send_request(&frame).await?;
            let reply = reader.next::<Envelope<Resp>>().await;
            drop(send);
            match reply? {
                Some(Envelope::Item(response)) => Ok(response),
                Some(Envelope::Fault(fault)) => Err(fault.into()),
                None => Err(RpcError::NoReply),
            }
        })
        .await
        .map_err(|_| RpcError::Timeout(timeout))?
    }

    /// Sends `request` and returns the stream of items the server pushes. Dialing and
    /// sending are bounded by the connect timeout; items have no deadline (a watch can
    /// be quiet for a long time), but a dead connection ends the subscription with an
    /// error within the idle timeout.
    pub async fn subscribe<Req, Item>(&self, request: &Req) -> Result<Subscription<Item>, RpcError>
    where
        Req: Serialize + ?Sized,
        Item: DeserializeOwned,
    {
        let frame = frame::encode(request, self.inner.endpoint.options.max_frame)?;
        let connect_timeout = self.inner.endpoint.options.connect_timeout;
        let (send, reader) = tokio::time::timeout(connect_timeout, self.send_request(&frame))
            .await
            .map_err(|_| self.no_answer(connect_timeout))??;
        Ok(Subscription {
            reader: Some(reader),
            _send: send,
            _item: PhantomData,
        })
    }

    /// Closes the current connection, if any; in-flight calls fail with
    /// [`RpcError::Closed`] and the next call dials again.
    pub async fn disconnect(&self) {
        if let Some(live) = self.inner.live.lock().await.take() {
            live.connection.close(0u32.into(), b"client disconnected");
        }
    }

    /// Opens a stream, sends one request frame and finishes the sending side.
    async fn send_request(
        &self,
        frame: &[u8],
    ) -> Result<(quinn::SendStream, FrameReader), RpcError> {
        let target = &self.inner.target;
        let mut attempt = 0;
        let (mut send, recv) = loop {
            let live = self.live().await?;
            match live.connection.open_bi().await {
                Ok(streams) => break streams,
                // Nothing was sent on it: redial once.
                Err(e) if attempt == 0 => {
                    tracing::debug!(%target, "connection found dead ({e}); redialing");
                    self.forget(&live.connection).await;
                    attempt += 1;
                }
                Err(e) => return Err(connection_error(target, &e)),
            }
        };
        match send.write_all(frame).await {
            Ok(()) => {
                let _ = send.finish();
            }
            // The server stops reading a request it refuses (e.g. too large) and says
            // why on the reply stream: read that instead of reporting "stopped".
            Err(quinn::WriteError::Stopped(_)) => {}
            Err(e) => return Err(write_error(target, &e)),
        }
        let reader = FrameReader::new(recv, self.inner.endpoint.options.max_frame, target.clone());
        Ok((send, reader))
    }

    /// The current connection, dialing a new one if there is none or it is closed.
    async fn live(&self) -> Result<Live, RpcError> {
        let mut slot = self.inner.live.lock().await;
        if let Some(live) = slot.as_ref() {
            if live.connection.close_reason().is_none() {
                return Ok(live.clone());
            }
            tracing::debug!(target = %self.inner.target, "connection closed; redialing");
        }
        *slot = None;
        let live = self.dial().await?;
        *slot = Some(live.clone());
        Ok(live)
    }

    /// Drops `connection` from the slot unless it was already replaced.
    async fn forget(&self, connection: &quinn::Connection) {
        let mut slot = self.inner.live.lock().await;
        if slot
            .as_ref()
            .is_some_and(|live| live.connection.stable_id() == connection.stable_id())
        {
            *slot = None;
        }
    }

    async fn dial(&self) -> Result<Live, RpcError> {
        let target = &self.inner.target;
        let endpoint = &self.inner.endpoint;
        let addr = self.resolve().await?;
        let connecting = endpoint
            .quinn
            .connect_with(endpoint.client_config.clone(), addr, CLUSTER_NAME)
            .map_err(|e| RpcError::Connect {
                target: target.clone(),
                reason: e.to_string(),
            })?;
        let connection = connecting.await.map_err(|e| connection_error(target, &e))?;
        let server = peer_of(&connection).map_err(|reason| {
            connection.close(1u32.into(), b"no tongdai identity");
            RpcError::Refused {
                target: target.clone(),
                reason,
            }
        })?;
        tracing::debug!(%target, server = %server.name, "connected");
        Ok(Live { connection, server })
    }

    /// Resolves the target afresh on every dial (a replica may move, e.g. in Kubernetes),
    /// preferring an address of the socket's family.
    async fn resolve(&self) -> Result<SocketAddr, RpcError> {
        let target = &self.inner.target;
        let error = |reason: String| RpcError::Connect {
            target: target.clone(),
            reason,
        };
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(target.as_str())
            .await
            .map_err(|e| error(format!("cannot resolve it ({e}); expected host:port")))?
            .collect();
        let local_v4 = self.inner.endpoint.local_addr().is_ipv4();
        addrs
            .iter()
            .find(|addr| addr.is_ipv4() == local_v4)
            .or(addrs.first())
            .copied()
            .ok_or_else(|| error("the name resolves to no address".to_owned()))
    }

    fn no_answer(&self, after: Duration) -> RpcError {
        RpcError::Connect {
            target: self.inner.target.clone(),
            reason: format!("no answer within {after:?}"),
        }
    }
}

/// The items a server pushes for one [`Client::subscribe`]. Dropping it tells the server
/// to stop.
#[derive(Debug)]
pub struct Subscription<Item> {
    reader: Option<FrameReader>,
    /// Kept so the stream stays open in both directions while subscribed.
    _send: quinn::SendStream,
    _item: PhantomData<fn() -> Item>,
}

impl<Item: DeserializeOwned> Subscription<Item> {
    /// The next item; `None` once the server ended the subscription. After an error,
    /// the subscription is over and `next` returns `None`. Cancel-safe.
    pub async fn next(&mut self) -> Option<Result<Item, RpcError>> {
        let reader = self.reader.as_mut()?;
        let result = match reader.next::<Envelope<Item>>().await {
            Ok(Some(Envelope::Item(item))) => return Some(Ok(item)),
            Ok(Some(Envelope::Fault(fault))) => Some(Err(fault.into())),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        };
        self.reader = None;
        result
    }
}
