//! The relay over real sockets on 127.0.0.1: packets in, packets out, latching, counters.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::worker::RemoteMedia;
use crate::media::engine::{Family, MediaConfig, MediaEngine, SessionId};
use crate::media::ports::PortRange;
use crate::media::relay::LegSide;
use crate::media::rtp::{RtpHeader, RtpPacket};

/// A port range for one test engine, spread by process id and a counter so parallel test
/// binaries rarely meet (and the engine moves on to the next pair when they do). Kept
/// below Linux's ephemeral range (32768+), where the test's own sockets are bound.
pub(crate) fn test_ports() -> PortRange {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let slot = (std::process::id() as u16)
        .wrapping_mul(7)
        .wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed))
        % 120;
    let min = 18_000 + slot * 100;
    PortRange::new(min, min + 99).expect("valid range")
}

pub(crate) fn engine() -> MediaEngine {
    MediaEngine::start(MediaConfig::loopback(test_ports())).expect("engine starts")
}

pub(crate) fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    s
}

pub(crate) fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 12 + payload.len()];
    let n = RtpHeader {
        payload_type: 0,
        sequence: seq,
        timestamp: u32::from(seq) * 160,
        ssrc,
        ..RtpHeader::default()
    }
    .write(payload, &mut buf)
    .expect("fits");
    buf.truncate(n);
    buf
}

/// Receives until `count` packets arrived or the deadline passed.
pub(crate) fn receive(
    socket: &UdpSocket,
    count: usize,
    deadline: Duration,
) -> Vec<(Vec<u8>, SocketAddr)> {
    let end = Instant::now() + deadline;
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while got.len() < count && Instant::now() < end {
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            got.push((buf[..n].to_vec(), from));
        }
    }
    got
}

async fn session(
    engine: &MediaEngine,
    caller: &UdpSocket,
    callee: &UdpSocket,
) -> (SessionId, [SocketAddr; 2]) {
    let id = engine.create_session("acme", "call-1").expect("session");
    let local = engine
        .local_media(id, [Family::V4, Family::V4])
        .await
        .expect("bound");
    for (side, peer) in [(LegSide::Caller, caller), (LegSide::Callee, callee)] {
        let remote = RemoteMedia {
            rtp: Some(peer.local_addr().unwrap()),
            rtcp: None,
            rtcp_mux: true,
        };
        engine.set_remote(id, side, remote).expect("remote");
    }
    let addr = |i: usize| SocketAddr::new(local[i].address, local[i].rtp_port);
    (id, [addr(0), addr(1)])
}

#[tokio::test]
async fn packets_cross_both_ways_and_counts_match() {
    let engine = engine();
    let (caller, callee) = (socket(), socket());
    let (id, [to_caller_leg, to_callee_leg]) = session(&engine, &caller, &callee).await;
    for seq in 0..100u16 {
        caller
            .send_to(&rtp(seq, 0xCA11, &[0xAA; 160]), to_caller_leg)
            .unwrap();
        callee
            .send_to(&rtp(seq, 0xCA1E, &[0xBB; 160]), to_callee_leg)
            .unwrap();
    }
    let at_callee = receive(&callee, 100, Duration::from_secs(5));
    let at_caller = receive(&caller, 100, Duration::from_secs(5));
    assert_eq!(at_callee.len(), 100);
    assert_eq!(at_caller.len(), 100);
    // Media comes from the leg's own port (symmetric RTP), unchanged.
    assert!(at_callee.iter().all(|(_, from)| *from == to_callee_leg));
    assert!(at_caller.iter().all(|(_, from)| *from == to_caller_leg));
    let first = RtpPacket::parse(&at_callee[0].0).unwrap();
    assert_eq!(
        (first.ssrc(), first.sequence(), first.payload()),
        (0xCA11, 0, &[0xAA; 160][..])
    );
    let stats = engine.destroy(id).await.expect("stats");
    assert_eq!(stats.caller.packets_received, 100);
    assert_eq!(stats.callee.packets_received, 100);
    assert_eq!(stats.caller.packets_sent, 100);
    assert_eq!(stats.callee.packets_sent, 100);
    assert_eq!(stats.caller.packets_lost, 0);
    assert_eq!(engine.ports_in_use().0, 0, "ports are released");
}

#[tokio::test]
async fn latching_follows_the_real_source_and_rejects_others() {
    let engine = engine();
    let (caller_sdp, callee) = (socket(), socket());
    // The caller's packets come from another port than its SDP says (NAT).
    let caller_nat = socket();
    let (id, [to_caller_leg, to_callee_leg]) = session(&engine, &caller_sdp, &callee).await;
    caller_nat
        .send_to(&rtp(1, 7, &[1; 160]), to_caller_leg)
        .unwrap();
    assert_eq!(receive(&callee, 1, Duration::from_secs(5)).len(), 1);
    // The callee's media now goes to the latched NAT address, not to the SDP one.
    callee
        .send_to(&rtp(1, 8, &[2; 160]), to_callee_leg)
        .unwrap();
    assert_eq!(receive(&caller_nat, 1, Duration::from_secs(5)).len(), 1);
    // A third party spraying the port is dropped while the caller is alive.
    let attacker = socket();
    for seq in 0..10 {
        attacker
            .send_to(&rtp(seq, 666, &[6; 160]), to_caller_leg)
            .unwrap();
    }
    caller_nat
        .send_to(&rtp(2, 7, &[1; 160]), to_caller_leg)
        .unwrap();
    let got = receive(&callee, 11, Duration::from_millis(600));
    assert_eq!(got.len(), 1, "only the latched caller's packet is relayed");
    assert_eq!(RtpPacket::parse(&got[0].0).unwrap().ssrc(), 7);
    let stats = engine.destroy(id).await.unwrap();
    assert_eq!(stats.caller.dropped_foreign_source, 10);
    assert_eq!(stats.caller.latched, Some(caller_nat.local_addr().unwrap()));
}

#[tokio::test]
async fn garbage_is_counted_not_relayed_and_ports_never_leak_under_churn() {
    let engine = engine();
    let (caller, callee) = (socket(), socket());
    for round in 0..200 {
        let (id, [to_caller_leg, _]) = session(&engine, &caller, &callee).await;
        if round % 50 == 0 {
            caller.send_to(b"not rtp", to_caller_leg).unwrap();
            caller.send_to(&rtp(1, 1, &[0; 20]), to_caller_leg).unwrap();
            assert_eq!(receive(&callee, 1, Duration::from_secs(5)).len(), 1);
            let stats = engine.stats(id).await.unwrap();
            assert_eq!(stats.caller.dropped_malformed, 1);
        }
        engine.destroy(id).await.unwrap();
    }
    assert_eq!(engine.ports_in_use().0, 0);
    assert!(engine.sessions().is_empty());
}
