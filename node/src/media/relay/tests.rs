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

fn offer_sdp(port: u16) -> String {
    format!(
        "v=0\r\no=alice 2890844526 2890844526 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n\
         a=ptime:20\r\na=rtcp-mux\r\na=candidate:1 1 UDP 2130706431 192.168.1.10 {port} typ host\r\n\
         m=video 5002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
    )
}

fn answer_sdp(port: u16) -> String {
    format!(
        "v=0\r\no=bob 1 1 IN IP4 10.9.9.9\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n\
         m=video 0 RTP/AVP 96\r\n"
    )
}

#[tokio::test]
async fn offer_and_answer_are_rewritten_to_the_relay_and_media_flows() {
    use crate::media::sdp::SessionDescription;
    let engine = engine();
    let (caller, callee) = (socket(), socket());
    let id = engine.create_session("acme", "call-sdp").unwrap();
    let offer = engine
        .offer(
            id,
            LegSide::Caller,
            &offer_sdp(caller.local_addr().unwrap().port()),
            None,
        )
        .await
        .expect("offer passes");
    let to_callee = SessionDescription::parse(&offer).expect("our offer is valid SDP");
    let audio = &to_callee.media()[0];
    assert_eq!(
        to_callee.connection().unwrap().address().to_string(),
        "127.0.0.1"
    );
    assert_eq!(to_callee.origin().username(), "tongdai");
    assert!(
        !offer.contains("192.168.1.10"),
        "nothing of the caller's topology leaks: {offer}"
    );
    assert!(!offer.contains("candidate"), "ICE is stripped: {offer}");
    assert!(
        audio.rtcp_mux() && audio.rtcp().is_some(),
        "mux and a separate port both offered"
    );
    assert_eq!(
        audio.payload_types().collect::<Vec<_>>(),
        vec![0, 8, 101],
        "codecs kept"
    );
    assert!(to_callee.media()[1].is_disabled(), "video is declined");
    let callee_leg = SocketAddr::new(audio_addr(&to_callee), audio.port());

    let answer = engine
        .answer(
            id,
            LegSide::Callee,
            &answer_sdp(callee.local_addr().unwrap().port()),
        )
        .await
        .expect("answer passes");
    let to_caller = SessionDescription::parse(&answer).unwrap();
    let caller_leg = SocketAddr::new(audio_addr(&to_caller), to_caller.media()[0].port());
    assert!(
        to_caller.media()[0].rtcp_mux(),
        "the caller offered mux, so it gets mux"
    );
    assert!(!answer.contains("10.9.9.9"), "{answer}");
    assert_ne!(caller_leg.port(), callee_leg.port());

    for seq in 0..50u16 {
        caller
            .send_to(&rtp(seq, 1, &[0x11; 160]), caller_leg)
            .unwrap();
        callee
            .send_to(&rtp(seq, 2, &[0x22; 160]), callee_leg)
            .unwrap();
    }
    assert_eq!(receive(&callee, 50, Duration::from_secs(5)).len(), 50);
    assert_eq!(receive(&caller, 50, Duration::from_secs(5)).len(), 50);

    // A re-offer that changes nothing keeps the version; a changed one bumps it.
    let again = engine
        .offer(
            id,
            LegSide::Caller,
            &offer_sdp(caller.local_addr().unwrap().port()),
            None,
        )
        .await
        .unwrap();
    assert_eq!(again, offer);
    let hold = offer_sdp(caller.local_addr().unwrap().port()).replace("a=ptime:20", "a=sendonly");
    let held = engine
        .offer(id, LegSide::Caller, &hold, None)
        .await
        .unwrap();
    let held = SessionDescription::parse(&held).unwrap();
    assert_eq!(
        held.origin().session_version(),
        to_callee.origin().session_version() + 1
    );
    engine.destroy(id).await.unwrap();
}

#[tokio::test]
async fn bad_sdp_and_answers_out_of_turn_are_refused() {
    use crate::media::engine::MediaError;
    let engine = engine();
    let id = engine.create_session("acme", "call-bad").unwrap();
    let err = engine
        .offer(id, LegSide::Caller, "v=0\r\nbogus\r\n", None)
        .await
        .unwrap_err();
    assert!(matches!(err, MediaError::Sdp(_)), "{err}");
    let no_audio = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\n";
    let err = engine
        .offer(id, LegSide::Caller, no_audio, None)
        .await
        .unwrap_err();
    assert!(matches!(err, MediaError::NoAudio), "{err}");
    let err = engine
        .answer(id, LegSide::Callee, &answer_sdp(4000))
        .await
        .unwrap_err();
    assert!(matches!(err, MediaError::NoPendingOffer), "{err}");
    engine
        .offer(id, LegSide::Caller, &offer_sdp(4000), None)
        .await
        .unwrap();
    let err = engine
        .answer(id, LegSide::Caller, &answer_sdp(4000))
        .await
        .unwrap_err();
    assert!(matches!(err, MediaError::WrongAnswerer), "{err}");
    let err = engine
        .offer(id, LegSide::Caller, &offer_sdp(4000), Some(Family::V6))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            MediaError::NoAddressFamily(..) | MediaError::FamilyChange
        ),
        "{err}"
    );
    engine.destroy(id).await.unwrap();
    let err = engine.stats(id).await.unwrap_err();
    assert!(matches!(err, MediaError::UnknownSession(_)));
}

fn audio_addr(sdp: &crate::media::sdp::SessionDescription) -> std::net::IpAddr {
    sdp.effective_connection(&sdp.media()[0]).unwrap().address()
}
