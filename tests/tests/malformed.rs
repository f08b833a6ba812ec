//! Hostile input against the real node: every RFC 4475/5118 message that must be
//! rejected, random garbage and truncated datagrams, over UDP and TCP. Each request
//! that can be answered gets the status the RFC prescribes; nothing crashes the node,
//! and it keeps serving registrations afterwards.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tongdai_tests::{Node, require_tool, sipp_for_users, sipp_users, wait_until, workspace_root};

#[derive(Debug, Deserialize)]
struct Manifest {
    message: Vec<Fixture>,
}

#[derive(Debug, Deserialize)]
struct Fixture {
    name: String,
    file: String,
    kind: String,
    outcome: String,
    status: Option<u16>,
    #[serde(default)]
    alt_status: Vec<u16>,
    stream: Option<String>,
}

fn fixtures() -> Vec<(Fixture, Vec<u8>)> {
    let dir = workspace_root().join("node/tests/fixtures");
    let text = std::fs::read_to_string(dir.join("manifest.toml")).expect("manifest");
    let manifest: Manifest = toml::from_str(&text).expect("manifest parses");
    manifest
        .message
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(dir.join(&f.file)).expect("fixture file");
            (f, bytes)
        })
        .collect()
}

fn node() -> Node {
    Node::start(
        "[registrar]\nalgorithms = [\"MD5\"]\n\
         [demo]\nrealm = \"e2e\"\nfirst_extension = 3000\ncount = 10\npassword_prefix = \"pw\"\n",
    )
}

/// The value of the first header line with this name (long form only), trimmed.
fn header(text: &str, name: &str) -> Option<String> {
    text.split("\r\n").find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

fn status_of(response: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(response).ok()?;
    text.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
}

/// Sends one message on a fresh TCP connection, half-closes, and reads what comes back
/// until the node closes the connection or `within` passes.
fn tcp_exchange(addr: SocketAddr, bytes: &[u8], within: Duration) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(within)).expect("timeout");
    let _ = s.write_all(bytes);
    let _ = s.shutdown(Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn assert_still_serving(node: &mut Node) {
    assert!(node.is_running(), "node died:\n{}", node.stderr());
    let users = sipp_users(3000, 10, |e| format!("pw{e}"), "e2e");
    let run = sipp_for_users("register_auth.xml", node, &users, "u1");
    assert!(
        run.status.success() && run.successful == 10,
        "registrations failed after hostile input: {run:?}\n{}",
        node.stderr()
    );
}

#[test]
fn torture_rejects_over_tcp_get_the_prescribed_status() {
    let mut node = node();
    let mut checked = 0;
    for (f, bytes) in fixtures() {
        if f.kind != "request" || f.outcome != "reject" {
            continue;
        }
        let reply = tcp_exchange(node.sip, &bytes, Duration::from_secs(5));
        if f.stream.as_deref() == Some("need_more") {
            // A Content-Length past the end keeps a stream parser waiting for the body;
            // on EOF the node just closes.
            assert!(
                reply.is_empty(),
                "{}: unexpected reply {:?}",
                f.name,
                String::from_utf8_lossy(&reply)
            );
            continue;
        }
        let status = status_of(&reply);
        let expected = f.status.expect("reject has a status");
        // 400 is always an acceptable answer to a malformed request (RFC 3261 21.4.1).
        let ok = status.is_some_and(|s| s == expected || s == 400 || f.alt_status.contains(&s));
        assert!(
            ok,
            "{}: expected {expected} (or {:?}), got {:?}",
            f.name,
            f.alt_status,
            String::from_utf8_lossy(&reply)
        );
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} reject fixtures were checked");
    assert_still_serving(&mut node);
}

#[test]
fn torture_messages_garbage_and_truncation_over_udp_leave_the_node_serving() {
    let mut node = node();
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    // Every fixture, valid or not, as a datagram; then collect what comes back and match
    // it to its fixture by Call-ID (answers arrive in any order).
    let all = fixtures();
    for (_, bytes) in &all {
        sock.send_to(bytes, node.sip).expect("send");
    }
    let mut replies: Vec<(String, u16)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 65536];
    while Instant::now() < deadline {
        let Ok((n, _)) = sock.recv_from(&mut buf) else {
            break; // 300 ms of silence: everything that will come has come
        };
        let text = String::from_utf8_lossy(&buf[..n]);
        if let (Some(status), Some(cid)) = (status_of(&buf[..n]), header(&text, "Call-ID")) {
            replies.push((cid, status));
        }
    }
    let mut answered = 0;
    for (f, bytes) in &all {
        let Some(cid) = header(&String::from_utf8_lossy(bytes), "Call-ID") else {
            continue;
        };
        let shared = all
            .iter()
            .filter(|(_, b)| header(&String::from_utf8_lossy(b), "Call-ID").as_ref() == Some(&cid))
            .count();
        if f.kind != "request" || f.outcome != "reject" || shared > 1 {
            continue;
        }
        // Parser-level rejects are answered to the source; validation-level ones follow
        // the Via (RFC 3261 18.2.2), which in most of these messages names other hosts.
        for (_, status) in replies.iter().filter(|(c, _)| *c == cid) {
            assert!(
                *status == 400 || Some(*status) == f.status || f.alt_status.contains(status),
                "{}: answered {status}",
                f.name
            );
            answered += 1;
        }
    }
    assert!(
        answered > 0,
        "no rejected datagram was answered to its source"
    );
    // Pseudo-random garbage (xorshift, fixed seed: reproducible), bounded in count.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..2000 {
        let len = (next() % 1500) as usize;
        let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let _ = sock.send_to(&data, node.sip);
    }
    // A valid REGISTER cut at every length.
    let register =
        b"REGISTER sip:e2e SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKcut;rport\r\n\
        From: <sip:3000@e2e>;tag=1\r\nTo: <sip:3000@e2e>\r\nCall-ID: cut\r\nCSeq: 1 REGISTER\r\n\
        Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    for cut in 1..register.len() {
        let _ = sock.send_to(&register[..cut], node.sip);
    }
    // The same garbage over TCP, on connections that are then dropped.
    let deadline = Instant::now() + Duration::from_secs(20);
    for i in 0..50 {
        assert!(Instant::now() < deadline, "TCP garbage phase took too long");
        let len = 64 + (next() % 4000) as usize;
        let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let _ = tcp_exchange(node.sip, &data, Duration::from_millis(500));
        let _ = tcp_exchange(
            node.sip,
            &register[..(i * 7) % register.len()],
            Duration::from_millis(200),
        );
    }
    assert_still_serving(&mut node);
    let errors = node
        .metric("tongdai_sip_parse_errors_total{transport=\"udp\"}")
        .unwrap_or(0.0);
    assert!(errors > 1000.0, "parse errors counted: {errors}");
}

#[test]
fn sipsak_flood_of_options_is_answered() {
    require_tool("sipsak", "apt-get install -y sipsak");
    let mut node = node();
    // sipsak's flood mode sends OPTIONS back to back; bounded by -e.
    let out = std::process::Command::new("sipsak")
        .args(["-F", "-e", "500", "-s", &format!("sip:flood@{}", node.sip)])
        .output()
        .expect("sipsak");
    assert!(node.is_running(), "{out:?}");
    // Loopback with large socket buffers: every request of the burst is answered.
    let answered = || {
        node.metric("tongdai_sip_responses_total{method=\"OPTIONS\",class=\"2xx\"}")
            .unwrap_or(0.0)
    };
    assert!(
        wait_until(Duration::from_secs(10), || answered() >= 500.0),
        "answered {} of 500",
        answered()
    );
    assert_still_serving(&mut node);
}
