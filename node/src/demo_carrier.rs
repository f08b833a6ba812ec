//! The test carrier `tongdai up` starts for its demo trunk: a small SIP user agent on
//! loopback that answers every call (180, then 200 with PCMU after a second) and echoes
//! the caller's audio back, so a newcomer can dial any outside number from a softphone
//! and hear themselves through the whole path: B2BUA, relay, trunk. It answers BYE and
//! CANCEL and nothing else; it is a demo peer, not a product feature.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::net::UdpSocket;

use crate::sip::{HeaderName, Message, Method, Request, Response, SipHeaders, parse_datagram};

/// How long the carrier rings before it answers.
const RING: Duration = Duration::from_secs(1);

/// A running test carrier.
#[derive(Debug)]
pub struct DemoCarrier {
    pub sip: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DemoCarrier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One call the carrier holds: its echo socket's task.
struct Leg {
    echo: tokio::task::JoinHandle<()>,
    answered: bool,
}

impl Drop for Leg {
    fn drop(&mut self) {
        self.echo.abort();
    }
}

type Calls = Arc<Mutex<HashMap<String, Leg>>>;

/// Starts the carrier on `ip`, any free port.
pub async fn start(ip: IpAddr) -> std::io::Result<DemoCarrier> {
    let socket = Arc::new(UdpSocket::bind(SocketAddr::new(ip, 0)).await?);
    let sip = socket.local_addr()?;
    let calls: Calls = Arc::default();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                return;
            };
            if let Ok(Message::Request(req)) = parse_datagram(&buf[..n]) {
                handle(&socket, &calls, req, from).await;
            }
        }
    });
    Ok(DemoCarrier { sip, task })
}

async fn handle(socket: &Arc<UdpSocket>, calls: &Calls, req: Request, from: SocketAddr) {
    let Ok(call_id) = req.call_id().map(str::to_owned) else {
        return;
    };
    let tag = format!("{:08x}", crc_tag(&call_id));
    let reply = |status: u16, body: Option<String>| {
        let mut r = Response::to_request(&req, status, Some(&tag));
        r.headers.push(
            HeaderName::Contact,
            format!("<sip:carrier@{}>", local(socket)),
        );
        if let Some(sdp) = body {
            r.headers.push(HeaderName::ContentType, "application/sdp");
            r.body = sdp.into_bytes().into();
        }
        r.to_bytes()
    };
    match req.method {
        Method::Invite => {
            if calls.lock().contains_key(&call_id) {
                return; // a retransmission while ringing: the answer is on its way
            }
            let Ok(echo) = UdpSocket::bind(SocketAddr::new(local(socket).ip(), 0)).await else {
                let _ = socket.send_to(&reply(503, None), from).await;
                return;
            };
            let Ok(echo_addr) = echo.local_addr() else {
                return;
            };
            let echo_task = tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                while let Ok((n, peer)) = echo.recv_from(&mut buf).await {
                    let _ = echo.send_to(&buf[..n], peer).await;
                }
            });
            calls.lock().insert(
                call_id.clone(),
                Leg {
                    echo: echo_task,
                    answered: false,
                },
            );
            let _ = socket.send_to(&reply(180, None), from).await;
            let ok = reply(200, Some(sdp(echo_addr)));
            let socket = socket.clone();
            let calls = calls.clone();
            tokio::spawn(async move {
                tokio::time::sleep(RING).await;
                // Resent until the call is gone or 10 times (no ACK tracking: a demo).
                for _ in 0..10 {
                    match calls.lock().get_mut(&call_id) {
                        Some(leg) => leg.answered = true,
                        None => return,
                    }
                    let _ = socket.send_to(&ok, from).await;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    if calls.lock().get(&call_id).is_none_or(|l| l.answered) {
                        return;
                    }
                }
            });
        }
        Method::Bye => {
            calls.lock().remove(&call_id);
            let _ = socket.send_to(&reply(200, None), from).await;
        }
        Method::Cancel => {
            let _ = socket.send_to(&reply(200, None), from).await;
            let ringing = calls
                .lock()
                .remove(&call_id)
                .is_some_and(|leg| !leg.answered);
            if ringing {
                let mut invite = req.clone();
                invite.method = Method::Invite;
                if let Ok(cseq) = req.cseq() {
                    invite
                        .headers
                        .set(HeaderName::CSeq, format!("{} INVITE", cseq.seq));
                }
                let mut r = Response::to_request(&invite, 487, Some(&tag));
                r.reason = "Request Terminated".into();
                let _ = socket.send_to(&r.to_bytes(), from).await;
            }
        }
        Method::Ack => {}
        _ => {
            let _ = socket.send_to(&reply(200, None), from).await;
        }
    }
}

fn local(socket: &UdpSocket) -> SocketAddr {
    socket
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
}

fn sdp(rtp: SocketAddr) -> String {
    format!(
        "v=0\r\no=carrier 1 1 IN IP4 {ip}\r\ns=demo carrier\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
        ip = rtp.ip(),
        port = rtp.port()
    )
}

/// A stable To tag per call, so every response of a call carries the same one.
fn crc_tag(call_id: &str) -> u32 {
    call_id.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}
