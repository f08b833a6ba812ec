//! SIP transports at the edge: UDP and TCP sockets (socket2 for buffer sizes and
//! SO_REUSEPORT), the Via stamping of RFC 3261 18.2.1 / RFC 3581, and response routing
//! per RFC 3261 18.2.2.

pub mod tcp;
pub mod udp;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use socket2::{Domain, Protocol, Socket, Type};

use super::header::{self, HeaderError, Via};
use super::message::{HeaderName, Request};
use super::uri::Host;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    Udp,
    Tcp,
}

impl TransportKind {
    /// As written in a Via: "UDP", "TCP".
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
        }
    }

    /// As used in metric labels: "udp", "tcp".
    pub fn label(self) -> &'static str {
        match self {
            TransportKind::Udp => "udp",
            TransportKind::Tcp => "tcp",
        }
    }
}

/// Socket options for a UDP listener.
#[derive(Debug, Clone, Copy)]
pub struct UdpOptions {
    pub recv_buffer: usize,
    pub send_buffer: usize,
    pub reuse_port: bool,
}

/// Binds a non-blocking UDP socket. With `reuse_port`, several sockets may bind the same
/// address and the kernel spreads senders across them.
pub fn bind_udp(addr: SocketAddr, opts: UdpOptions) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    #[cfg(unix)]
    socket.set_reuse_port(opts.reuse_port)?;
    // Buffer sizes are best effort: the kernel caps them at net.core.[rw]mem_max.
    let _ = socket.set_recv_buffer_size(opts.recv_buffer);
    let _ = socket.set_send_buffer_size(opts.send_buffer);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

pub fn bind_tcp(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    socket.set_reuse_port(reuse_port)?;
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// RFC 3261 18.2.1 and RFC 3581: records where a request really came from in its top
/// Via, so responses find their way back through NAT.
pub fn stamp_via(req: &mut Request, source: SocketAddr) -> Result<(), HeaderError> {
    let first_line = req
        .headers
        .first_mut(&HeaderName::Via)
        .ok_or(HeaderError::Missing("Via"))?;
    let top = header::split_list(first_line)?
        .into_iter()
        .next()
        .ok_or(HeaderError::Missing("Via"))?;
    let mut via = Via::parse(top)?;
    let rport_requested = via.rport().is_some();
    let host_matches = via.host == Host::Ip(source.ip());
    if !host_matches || rport_requested {
        via.set_param("received", Some(source.ip().to_string()));
    }
    if rport_requested {
        via.set_param("rport", Some(source.port().to_string()));
    }
    if !host_matches || rport_requested {
        *first_line = header::replace_top_via(first_line, &via)?;
    }
    Ok(())
}

/// Where to send a response (RFC 3261 18.2.2 for unreliable transports, RFC 3581):
/// `received` (or the source) address, at `rport` when filled, else the sent-by port.
/// `maddr` is deliberately ignored: multicast responses are not offered.
pub fn response_target(via: &Via, source: SocketAddr) -> SocketAddr {
    let ip = via
        .received()
        .and_then(|r| r.trim_matches(['[', ']']).parse::<IpAddr>().ok())
        .unwrap_or(source.ip());
    let port = match via.rport() {
        Some(Some(p)) => p,
        _ => via.port.unwrap_or(5060),
    };
    SocketAddr::new(ip, port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{Message, SipHeaders};
    use crate::sip::parse::parse_datagram;

    fn request(via: &str) -> Request {
        let msg = format!(
            "OPTIONS sip:a@b SIP/2.0\r\nVia: {via}, SIP/2.0/UDP proxy.example.com\r\n\
             Call-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        match parse_datagram(msg.as_bytes()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    #[test]
    fn rport_is_filled_and_used() {
        let mut r = request("SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKa;rport");
        let src: SocketAddr = "203.0.113.7:40000".parse().unwrap();
        stamp_via(&mut r, src).unwrap();
        let via = r.top_via().unwrap();
        assert_eq!(via.received(), Some("203.0.113.7"));
        assert_eq!(via.rport(), Some(Some(40000)));
        assert_eq!(response_target(&via, src), src);
        assert_eq!(r.via().unwrap().len(), 2, "the second Via is untouched");
    }

    #[test]
    fn received_without_rport_uses_sent_by_port() {
        let mut r = request("SIP/2.0/UDP pc33.example.com:5070;branch=z9hG4bKa");
        let src: SocketAddr = "192.0.2.4:40000".parse().unwrap();
        stamp_via(&mut r, src).unwrap();
        let via = r.top_via().unwrap();
        assert_eq!(via.received(), Some("192.0.2.4"));
        assert_eq!(
            response_target(&via, src),
            "192.0.2.4:5070".parse().unwrap()
        );
    }

    #[test]
    fn matching_host_is_left_alone() {
        let mut r = request("SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKa");
        let before = r.headers.get("Via").unwrap().to_owned();
        stamp_via(&mut r, "192.0.2.4:5060".parse().unwrap()).unwrap();
        assert_eq!(r.headers.get("Via").unwrap(), before);
        let v6 = request("SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKa;rport");
        let mut v6 = v6;
        let src: SocketAddr = "[2001:db8::9:1]:5062".parse().unwrap();
        stamp_via(&mut v6, src).unwrap();
        assert_eq!(response_target(&v6.top_via().unwrap(), src), src);
    }
}

/// What a transport hands to the SIP core.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // the common case is the large one; boxing it costs more
pub enum Inbound {
    Message(crate::sip::Message),
    /// Bytes that did not parse; the core answers 400 when it can find enough headers.
    Malformed {
        error: crate::sip::ParseError,
        raw: Vec<u8>,
    },
}

/// Sends bytes to a peer over the transport it is reachable on: the UDP socket for UDP,
/// the open connection for TCP. Cheap to clone; shared by the SIP core and its timers.
#[derive(Debug, Clone, Default)]
pub struct Outbound {
    udp: Option<Arc<tokio::net::UdpSocket>>,
    tcp: Arc<parking_lot::Mutex<HashMap<SocketAddr, mpsc::Sender<Bytes>>>>,
}

/// Queued writes per TCP connection before further sends to it are dropped (the peer is
/// not reading; its transactions time out).
pub const TCP_WRITE_QUEUE: usize = 256;

impl Outbound {
    pub fn new(udp: Option<Arc<tokio::net::UdpSocket>>) -> Outbound {
        Outbound {
            udp,
            tcp: Arc::default(),
        }
    }

    /// Registers an accepted connection; returns the receiving end its writer drains.
    pub fn add_connection(&self, peer: SocketAddr) -> mpsc::Receiver<Bytes> {
        let (tx, rx) = mpsc::channel(TCP_WRITE_QUEUE);
        self.tcp.lock().insert(peer, tx);
        rx
    }

    pub fn remove_connection(&self, peer: SocketAddr) {
        self.tcp.lock().remove(&peer);
    }

    /// Sends without waiting. Returns false when the bytes could not be handed over (no
    /// connection to that peer, its queue is full, or the UDP send failed).
    pub fn send(&self, to: SocketAddr, kind: TransportKind, bytes: Bytes) -> bool {
        match kind {
            TransportKind::Udp => {
                let Some(sock) = &self.udp else { return false };
                match sock.try_send_to(&bytes, to) {
                    Ok(_) => true,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        // Socket buffer full: finish the send in the background.
                        let sock = sock.clone();
                        tokio::spawn(async move {
                            let _ = sock.send_to(&bytes, to).await;
                        });
                        true
                    }
                    Err(e) => {
                        tracing::debug!(%to, "udp send failed: {e}");
                        false
                    }
                }
            }
            TransportKind::Tcp => {
                let sender = self.tcp.lock().get(&to).cloned();
                sender.is_some_and(|s| s.try_send(bytes).is_ok())
            }
        }
    }
}

/// The SIP core as the transports see it. It answers through an [`Outbound`].
pub trait MessageHandler: Send + Sync + 'static {
    fn handle(
        &self,
        inbound: Inbound,
        source: SocketAddr,
        kind: TransportKind,
    ) -> impl std::future::Future<Output = ()> + Send;
}
