//! Transport behaviour of the real node: retransmissions answered from the transaction
//! layer, RFC 3581 rport, TCP keep-alives and framing of back-to-back requests.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use tongdai_tests::Node;

fn node() -> Node {
    Node::start(
        "[demo]\nrealm = \"e2e\"\nfirst_extension = 4000\ncount = 2\npassword_prefix = \"pw\"\n",
    )
}

/// A request whose Via names an unreachable host; `PORT` is filled in by [`send_twice`].
fn request(method: &str, branch: &str) -> String {
    format!(
        "{method} sip:e2e SIP/2.0\r\nVia: SIP/2.0/UDP 10.9.9.9:5060;branch={branch};rport\r\n\
         From: <sip:4000@e2e>;tag=a1\r\nTo: <sip:4000@e2e>\r\nCall-ID: rt-{branch}@PORT\r\n\
         CSeq: 1 {method}\r\nContact: <sip:4000@127.0.0.1:PORT>\r\nMax-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// Sends `req` twice from one socket and returns both answers.
fn send_twice(node: &Node, req: &str) -> (Vec<String>, u16) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = sock.local_addr().unwrap().port();
    let req = req.replace("PORT", &port.to_string());
    let mut replies = Vec::new();
    for _ in 0..2 {
        // The Via names an unreachable host: the answer arrives only because rport and
        // received send it back to where the request came from (RFC 3581).
        sock.send_to(req.as_bytes(), node.sip).unwrap();
        let mut buf = [0u8; 4096];
        let (n, _) = sock.recv_from(&mut buf).expect("a response via rport");
        replies.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    (replies, port)
}

#[test]
fn a_retransmitted_request_gets_the_same_response_via_rport() {
    let node = node();
    let (replies, port) = send_twice(&node, &request("OPTIONS", "z9hG4bKretrans1"));
    assert!(replies[0].starts_with("SIP/2.0 200 "), "{}", replies[0]);
    assert!(
        replies[0].contains(&format!("rport={port}")),
        "{}",
        replies[0]
    );
    assert!(replies[0].contains("received=127.0.0.1"), "{}", replies[0]);
    // Same random To tag: the server transaction answered, the TU ran once.
    assert_eq!(replies[0], replies[1]);
    let handled = node
        .metric("tongdai_sip_responses_total{method=\"OPTIONS\",class=\"2xx\"}")
        .unwrap_or(0.0);
    assert_eq!(handled, 1.0, "the TU saw the retransmission");
}

#[test]
fn an_unauthenticated_register_is_challenged_statelessly() {
    let node = node();
    let (replies, _) = send_twice(&node, &request("REGISTER", "z9hG4bKchal1"));
    assert!(replies[0].starts_with("SIP/2.0 401 "), "{}", replies[0]);
    assert!(replies[1].starts_with("SIP/2.0 401 "), "{}", replies[1]);
    // RFC 3261 8.2.7: no transaction is kept for a challenge, so each copy gets its own
    // nonce; both are valid.
    assert_ne!(replies[0], replies[1]);
}

#[test]
fn tcp_keepalive_pong_and_pipelined_requests() {
    let node = node();
    let mut s = TcpStream::connect(node.sip).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"\r\n\r\n").unwrap();
    let mut pong = [0u8; 2];
    s.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"\r\n");
    // Two OPTIONS in one write: both framed by Content-Length, both answered in order.
    let local = s.local_addr().unwrap();
    let opt = |n: u32| {
        format!(
            "OPTIONS sip:e2e SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKpipe{n}\r\n\
             From: <sip:x@e2e>;tag=p\r\nTo: <sip:e2e>\r\nCall-ID: pipe{n}\r\nCSeq: {n} OPTIONS\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
    };
    s.write_all(format!("{}{}", opt(1), opt(2)).as_bytes())
        .unwrap();
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    while got.matches("SIP/2.0 200 OK").count() < 2 {
        let n = s.read(&mut buf).expect("responses");
        assert!(n > 0, "connection closed early: {got}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let first = got.find("Call-ID: pipe1").unwrap();
    let second = got.find("Call-ID: pipe2").unwrap();
    assert!(first < second, "{got}");
}
