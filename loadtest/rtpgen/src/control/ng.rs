//! rtpengine's ng control protocol over UDP: a request is `<cookie> <bencoded dict>`,
//! the reply `<cookie> <bencoded dict>` with `result` = `ok` (or `pong`) or `error` and
//! `error-reason`. rtpengine caches replies by cookie, so a retransmission with the same
//! cookie is answered, not executed twice.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};

use super::{CallMedia, CallSetup, Control, Handle};
use crate::bencode::Value;
use crate::sdp;

/// One request waits this long for its reply before it is sent again.
const TRY_TIMEOUT: Duration = Duration::from_millis(2000);
const TRIES: u32 = 3;

#[derive(Debug)]
pub struct NgClient {
    sock: UdpSocket,
    cookie_prefix: String,
    counter: u64,
    buf: Vec<u8>,
}

impl NgClient {
    /// `name` makes cookies unique across the generator's control threads.
    pub fn connect(ng: SocketAddr, name: &str) -> Result<NgClient> {
        let bind: SocketAddr = if ng.is_ipv4() {
            "127.0.0.1:0"
        } else {
            "[::1]:0"
        }
        .parse()
        .context("bind address")?;
        let sock = UdpSocket::bind(bind).context("binding the ng client socket")?;
        sock.connect(ng)
            .with_context(|| format!("ng address {ng}"))?;
        sock.set_read_timeout(Some(TRY_TIMEOUT))?;
        Ok(NgClient {
            sock,
            cookie_prefix: format!("{}_{name}_", std::process::id()),
            counter: 0,
            buf: vec![0; 65536],
        })
    }

    /// Sends `req`, returns the reply dictionary when `result` is `ok` or `pong`.
    pub fn request(&mut self, req: &Value) -> Result<Value> {
        self.counter += 1;
        let cookie = format!("{}{}", self.cookie_prefix, self.counter);
        let mut msg = Vec::with_capacity(512);
        msg.extend_from_slice(cookie.as_bytes());
        msg.push(b' ');
        req.encode_into(&mut msg);
        for _ in 0..TRIES {
            self.sock.send(&msg).context("sending an ng request")?;
            let deadline = Instant::now() + TRY_TIMEOUT;
            while Instant::now() < deadline {
                let n = match self.sock.recv(&mut self.buf) {
                    Ok(n) => n,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        break;
                    }
                    // ECONNREFUSED: nothing listens (yet); wait for the next try.
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        std::thread::sleep(Duration::from_millis(50));
                        break;
                    }
                    Err(e) => return Err(e).context("receiving an ng reply"),
                };
                let reply = &self.buf[..n];
                let Some(space) = reply.iter().position(|&b| b == b' ') else {
                    continue;
                };
                if &reply[..space] != cookie.as_bytes() {
                    continue; // a late reply to an earlier request
                }
                let dict = Value::decode(&reply[space + 1..]).context("decoding the ng reply")?;
                return match dict.get("result").and_then(Value::as_text).as_deref() {
                    Some("ok") | Some("pong") => Ok(dict),
                    Some("error") => {
                        let reason = dict
                            .get("error-reason")
                            .and_then(Value::as_text)
                            .unwrap_or_default();
                        Err(anyhow!("rtpengine refused the request: {reason}"))
                    }
                    other => Err(anyhow!("unexpected ng result {other:?}: {dict}")),
                };
            }
        }
        bail!(
            "no ng reply after {TRIES} tries of {} ms",
            TRY_TIMEOUT.as_millis()
        )
    }
}

/// The options every offer and answer carries: rewrite the o= and session c= lines to the
/// relay's address, and drop ICE (plain RTP/AVP phones).
fn common(command: &str, call_id: &str, from_tag: &str) -> Vec<(&'static str, Value)> {
    vec![
        ("command", Value::str(command)),
        ("call-id", Value::str(call_id)),
        ("from-tag", Value::str(from_tag)),
        (
            "replace",
            Value::list_of_str(&["origin", "session-connection"]),
        ),
        ("ICE", Value::str("remove")),
    ]
}

fn tags(call: u32) -> (String, String) {
    (format!("a{call}"), format!("b{call}"))
}

impl Control for NgClient {
    fn ready(&mut self) -> Result<()> {
        self.request(&Value::dict([("command", Value::str("ping"))]))
            .map(|_| ())
    }

    fn setup(&mut self, c: &CallSetup) -> Result<CallMedia> {
        let (from_tag, to_tag) = tags(c.call);
        let mut offer = common("offer", &c.call_id, &from_tag);
        offer.push(("sdp", Value::str(&c.caller_sdp)));
        if c.record {
            offer.push(("record call", Value::str("yes")));
        }
        let reply = self.request(&Value::dict(offer)).context("offer")?;
        let to_callee = reply
            .get("sdp")
            .and_then(Value::as_text)
            .context("offer reply without sdp")?;
        let callee_sends_to = sdp::audio_destination(&to_callee).context("SDP for the callee")?;

        let mut answer = common("answer", &c.call_id, &from_tag);
        answer.push(("to-tag", Value::str(&to_tag)));
        answer.push(("sdp", Value::str(&c.callee_sdp)));
        let reply = self.request(&Value::dict(answer)).context("answer")?;
        let to_caller = reply
            .get("sdp")
            .and_then(Value::as_text)
            .context("answer reply without sdp")?;
        let caller_sends_to = sdp::audio_destination(&to_caller).context("SDP for the caller")?;
        Ok(CallMedia {
            call: c.call,
            caller_sends_to,
            callee_sends_to,
            handle: Handle::Ng {
                call_id: c.call_id.clone(),
                from_tag,
            },
        })
    }

    fn teardown(&mut self, m: &CallMedia) -> Result<()> {
        let Handle::Ng { call_id, from_tag } = &m.handle else {
            bail!("not an rtpengine call");
        };
        let req = Value::dict([
            ("command", Value::str("delete")),
            ("call-id", Value::str(call_id)),
            ("from-tag", Value::str(from_tag)),
        ]);
        self.request(&req).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-shot fake rtpengine: answers a ping (after ignoring the first try) and
    /// checks the cookie is echoed.
    #[test]
    fn request_matches_the_reply_by_cookie() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let fake = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            let (n, from) = server.recv_from(&mut buf).unwrap();
            let msg = buf[..n].to_vec();
            let space = msg.iter().position(|&b| b == b' ').unwrap();
            let req = Value::decode(&msg[space + 1..]).unwrap();
            assert_eq!(req.get("command"), Some(&Value::str("ping")));
            // A stale reply with another cookie first, then the real one.
            server.send_to(b"other d6:result4:ponge", from).unwrap();
            let mut reply = msg[..space + 1].to_vec();
            reply.extend_from_slice(b"d6:result4:ponge");
            server.send_to(&reply, from).unwrap();
        });
        let mut client = NgClient::connect(addr, "t").unwrap();
        client.ready().unwrap();
        fake.join().unwrap();
    }

    #[test]
    fn error_replies_carry_the_reason() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let fake = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            let (n, from) = server.recv_from(&mut buf).unwrap();
            let space = buf[..n].iter().position(|&b| b == b' ').unwrap();
            let mut reply = buf[..space + 1].to_vec();
            reply.extend_from_slice(b"d12:error-reason12:Unknown call6:result5:errore");
            server.send_to(&reply, from).unwrap();
        });
        let mut client = NgClient::connect(addr, "t").unwrap();
        let err = client
            .request(&Value::dict([("command", Value::str("delete"))]))
            .unwrap_err();
        assert!(err.to_string().contains("Unknown call"), "{err}");
        fake.join().unwrap();
    }
}
