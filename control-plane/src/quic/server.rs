//! The serving side: [`serve`] accepts connections, authenticates the peer from its
//! certificate, and hands each call's request to a [`Service`] with a [`Reply`] to
//! answer once or to stream through.

use std::fmt::Display;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::task::JoinSet;

use super::endpoint::RpcEndpoint;
use super::error::{RpcError, write_error};
use super::frame::{self, Envelope, Fault, FrameReader};
use super::tls::{Peer, peer_of};

/// Stream error code telling a client to stop sending a request the server refused.
const REFUSED: u32 = 1;
/// Connection close code for a certificate without a tongdai name and role.
const NO_IDENTITY: u32 = 2;

/// An RPC service: one request type (typically an enum of every call it offers), each
/// request answered through its [`Reply`].
///
/// ```ignore
/// impl Service for RaftService {
///     type Request = RaftRequest;
///     async fn handle(&self, peer: &Peer, request: RaftRequest, reply: Reply) {
///         if peer.role != Role::Replica {
///             let _ = reply.fail("only replicas may send Raft messages").await;
///             return;
///         }
///         match request {
///             RaftRequest::Vote(vote) => { let _ = reply.send_one(&self.raft.vote(vote).await).await; }
///             ...
///         }
///     }
/// }
/// ```
pub trait Service: Send + Sync + 'static {
    type Request: DeserializeOwned + Send + 'static;

    /// Handles one call from `peer`. A reply dropped without an answer ends the call;
    /// the client sees [`RpcError::NoReply`].
    fn handle(
        &self,
        peer: &Peer,
        request: Self::Request,
        reply: Reply,
    ) -> impl Future<Output = ()> + Send;
}

/// Serves `service` on `endpoint` until the endpoint is closed. Spawn it; aborting the
/// task stops every connection's handlers too.
pub async fn serve<S: Service>(endpoint: RpcEndpoint, service: Arc<S>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            incoming = endpoint.quinn.accept() => {
                let Some(incoming) = incoming else { break };
                let service = service.clone();
                let max_frame = endpoint.options.max_frame;
                connections.spawn(serve_connection(incoming, service, max_frame));
            }
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = done {
                    tracing::error!("QUIC connection task failed: {e}");
                }
            }
        }
    }
}

async fn serve_connection<S: Service>(incoming: quinn::Incoming, service: Arc<S>, max_frame: u32) {
    let remote = incoming.remote_address();
    let connection = match incoming.await {
        Ok(connection) => connection,
        Err(e) => {
            tracing::warn!(%remote, "refused a QUIC connection: {e}");
            return;
        }
    };
    let peer = match peer_of(&connection) {
        Ok(peer) => Arc::new(peer),
        Err(reason) => {
            tracing::warn!(%remote, "refused a QUIC connection: {reason}");
            connection.close(
                NO_IDENTITY.into(),
                b"certificate without a tongdai identity",
            );
            return;
        }
    };
    tracing::debug!(%remote, name = %peer.name, role = %peer.role, "QUIC peer connected");
    let mut calls = JoinSet::new();
    loop {
        tokio::select! {
            streams = connection.accept_bi() => match streams {
                Ok((send, recv)) => {
                    calls.spawn(serve_call(service.clone(), peer.clone(), send, recv, max_frame));
                }
                Err(e) => {
                    tracing::debug!(%remote, name = %peer.name, "QUIC peer gone: {e}");
                    break;
                }
            },
            Some(done) = calls.join_next(), if !calls.is_empty() => {
                if let Err(e) = done {
                    tracing::error!(name = %peer.name, "RPC handler failed: {e}");
                }
            }
        }
    }
}

async fn serve_call<S: Service>(
    service: Arc<S>,
    peer: Arc<Peer>,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    max_frame: u32,
) {
    let mut reader = FrameReader::new(recv, max_frame, peer.name.clone());
    let reply = Reply {
        send,
        max_frame,
        peer: peer.clone(),
    };
    let request = match reader.next::<S::Request>().await {
        Ok(Some(request)) => request,
        // Opened and finished without a request: nothing to answer.
        Ok(None) => return,
        Err(RpcError::FrameTooLarge { size, max }) => {
            tracing::warn!(name = %peer.name, size, max, "refused an oversized request");
            reader.stop(REFUSED);
            let _ = reply.fault(Fault::FrameTooLarge { size, max }).await;
            return;
        }
        Err(RpcError::Decode(reason)) => {
            tracing::warn!(name = %peer.name, "refused an undecodable request: {reason}");
            let _ = reply.fault(Fault::BadRequest(reason)).await;
            return;
        }
        Err(e) => {
            tracing::debug!(name = %peer.name, "call abandoned before its request: {e}");
            return;
        }
    };
    drop(reader);
    service.handle(&peer, request, reply).await;
}

/// How a handler answers one call: once ([`Reply::send_one`]), with an error
/// ([`Reply::fail`]), or with a stream of items ([`Reply::stream`]).
#[derive(Debug)]
pub struct Reply {
    send: quinn::SendStream,
    max_frame: u32,
    peer: Arc<Peer>,
}

impl Reply {
    /// Answers the call with `response`. Fails when the client is gone or the response
    /// exceeds the frame limit (the client is told so).
    pub async fn send_one<T: Serialize + ?Sized>(mut self, response: &T) -> Result<(), RpcError> {
        self.write(response).await?;
        let _ = self.send.finish();
        Ok(())
    }

    /// Answers the call with an error; the client gets [`RpcError::Remote`] with this text.
    pub async fn fail(self, message: impl Display) -> Result<(), RpcError> {
        self.fault(Fault::Handler(message.to_string())).await
    }

    /// Turns the reply into a stream of items of type `T`.
    pub fn stream<T: Serialize>(self) -> ReplyStream<T> {
        ReplyStream {
            reply: self,
            _item: PhantomData,
        }
    }

    async fn fault(mut self, fault: Fault) -> Result<(), RpcError> {
        let frame = frame::encode(&Envelope::<()>::Fault(fault), self.max_frame)?;
        self.send
            .write_all(&frame)
            .await
            .map_err(|e| write_error(&self.peer.name, &e))?;
        let _ = self.send.finish();
        Ok(())
    }

    async fn write<T: Serialize + ?Sized>(&mut self, item: &T) -> Result<(), RpcError> {
        let frame = match frame::encode(&Envelope::Item(item), self.max_frame) {
            Ok(frame) => frame,
            Err(e) => {
                let fault = match &e {
                    RpcError::FrameTooLarge { size, max } => Fault::FrameTooLarge {
                        size: *size,
                        max: *max,
                    },
                    other => Fault::Handler(format!("the server cannot send its reply: {other}")),
                };
                if let Ok(frame) = frame::encode(&Envelope::<()>::Fault(fault), self.max_frame) {
                    let _ = self.send.write_all(&frame).await;
                }
                let _ = self.send.finish();
                return Err(e);
            }
        };
        self.send
            .write_all(&frame)
            .await
            .map_err(|e| write_error(&self.peer.name, &e))
    }
}

/// The sending end of a subscription. Dropping it ends the subscription normally.
#[derive(Debug)]
pub struct ReplyStream<T> {
    reply: Reply,
    _item: PhantomData<fn(&T)>,
}

impl<T: Serialize> ReplyStream<T> {
    /// Pushes one item. Fails once the subscriber is gone: stop producing then. Waits
    /// while the subscriber is slow to read (QUIC flow control), so a slow subscriber
    /// slows its own stream only.
    pub async fn send(&mut self, item: &T) -> Result<(), RpcError> {
        self.reply.write(item).await
    }

    /// Ends the subscription with an error for the subscriber.
    pub async fn fail(self, message: impl Display) -> Result<(), RpcError> {
        self.reply.fail(message).await
    }

    /// Resolves when the subscriber has gone away (dropped its subscription or lost the
    /// connection): use it to stop waiting for something to send.
    pub async fn closed(&self) {
        let _ = self.reply.send.stopped().await;
    }

    /// Who subscribed.
    pub fn peer(&self) -> &Peer {
        &self.reply.peer
    }
}
