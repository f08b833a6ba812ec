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
            ..RemoteMedia::default()
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

/// A session set up through SDP, as the B2BUA does it: PCMU + telephone-event 101.
async fn sdp_session(
    engine: &MediaEngine,
    caller: &UdpSocket,
    callee: &UdpSocket,
) -> (SessionId, SocketAddr, SocketAddr) {
    use crate::media::sdp::SessionDescription;
    let id = engine.create_session("acme", "call-media").unwrap();
    let offer = engine
        .offer(
            id,
            LegSide::Caller,
            &offer_sdp(caller.local_addr().unwrap().port()),
            None,
        )
        .await
        .unwrap();
    let offer = SessionDescription::parse(&offer).unwrap();
    let answer = engine
        .answer(
            id,
            LegSide::Callee,
            &answer_sdp(callee.local_addr().unwrap().port()),
        )
        .await
        .unwrap();
    let answer = SessionDescription::parse(&answer).unwrap();
    let to_callee_leg = SocketAddr::new(audio_addr(&offer), offer.media()[0].port());
    let to_caller_leg = SocketAddr::new(audio_addr(&answer), answer.media()[0].port());
    (id, to_caller_leg, to_callee_leg)
}

async fn next_event(
    events: &mut tokio::sync::broadcast::Receiver<(SessionId, crate::media::relay::MediaEvent)>,
    id: SessionId,
) -> crate::media::relay::MediaEvent {
    loop {
        let (session, event) = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("an event within 5 s")
            .expect("feed open");
        if session == id {
            return event;
        }
    }
}

#[tokio::test]
async fn rfc4733_digits_from_the_caller_are_reported_once_each() {
    use crate::media::dtmf::{TelephoneEvent, digit_event};
    use crate::media::relay::MediaEvent;
    let engine = engine();
    let mut events = engine.subscribe();
    let (caller, callee) = (socket(), socket());
    let (id, to_caller_leg, _) = sdp_session(&engine, &caller, &callee).await;
    let digits = "0123456789*#ABCD";
    let mut seq = 0u16;
    let mut buf = [0u8; 64];
    for (n, digit) in digits.chars().enumerate() {
        let timestamp = 10_000 + n as u32 * 1600;
        // 3 progress packets, then the end packet three times (RFC 4733 §2.5.1.4).
        for (duration, end) in [
            (160, false),
            (320, false),
            (480, false),
            (640, true),
            (640, true),
            (640, true),
        ] {
            let payload = TelephoneEvent {
                event: digit_event(digit).unwrap(),
                end,
                volume: 10,
                duration,
            }
            .to_bytes();
            let len = RtpHeader {
                payload_type: 101,
                sequence: seq,
                timestamp,
                ssrc: 0xD7,
                marker: duration == 160,
                ..RtpHeader::default()
            }
            .write(&payload, &mut buf)
            .unwrap();
            caller.send_to(&buf[..len], to_caller_leg).unwrap();
            seq = seq.wrapping_add(1);
        }
    }
    let mut got = String::new();
    for _ in 0..digits.len() {
        match next_event(&mut events, id).await {
            MediaEvent::Dtmf {
                leg,
                digit,
                source,
                duration_ms,
            } => {
                assert_eq!((leg, source, duration_ms), (LegSide::Caller, "rfc4733", 80));
                got.push(digit);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, digits);
    // The digits were relayed too (the callee's phone may want them), and no digit twice.
    assert_eq!(receive(&callee, 96, Duration::from_secs(5)).len(), 96);
    assert!(engine.take_events(id).unwrap().len() == digits.len());
    engine.destroy(id).await.unwrap();
}

#[tokio::test]
async fn inband_digits_in_the_audio_are_detected_when_asked() {
    use crate::media::dtmf::ToneGenerator;
    use crate::media::g711::Law;
    use crate::media::relay::MediaEvent;
    let engine = engine();
    let mut events = engine.subscribe();
    let (caller, callee) = (socket(), socket());
    let (id, to_caller_leg, _) = sdp_session(&engine, &caller, &callee).await;
    engine
        .detect_inband_dtmf(id, LegSide::Caller, true)
        .unwrap();
    // Let the worker take the command before audio starts.
    engine.stats(id).await.unwrap();
    let digits = "159#";
    let mut seq = 0u16;
    let mut payload = [0u8; 160];
    let mut send = |payload: &[u8]| {
        caller
            .send_to(&rtp(seq, 0xAB, payload), to_caller_leg)
            .unwrap();
        seq = seq.wrapping_add(1);
    };
    for digit in digits.chars() {
        let mut tone = ToneGenerator::digit(digit, -10.0).unwrap();
        for _ in 0..4 {
            tone.fill_g711(Law::Ulaw, &mut payload); // 80 ms of tone
            send(&payload);
        }
        for _ in 0..4 {
            send(&[Law::Ulaw.silence(); 160]); // 80 ms of silence
        }
    }
    let mut got = String::new();
    for _ in 0..digits.len() {
        if let MediaEvent::Dtmf { digit, source, .. } = next_event(&mut events, id).await {
            assert_eq!(source, "inband");
            got.push(digit);
        }
    }
    assert_eq!(got, digits);
    engine.destroy(id).await.unwrap();
}

#[tokio::test]
async fn a_prompt_replaces_the_other_leg_paced_at_20_ms_then_relay_resumes() {
    use crate::media::playback::Prompt;
    use crate::media::relay::MediaEvent;
    let engine = engine();
    let mut events = engine.subscribe();
    let (caller, callee) = (socket(), socket());
    let (id, to_caller_leg, _) = sdp_session(&engine, &caller, &callee).await;
    // The callee's SDP address is known, so the prompt goes there before it has sent
    // anything. One second of a 1 kHz square wave: 50 packets.
    let samples: Vec<i16> = (0..8000)
        .map(|i| if i % 8 < 4 { 8000 } else { -8000 })
        .collect();
    let prompt = Prompt::from_linear(&samples, crate::media::g711::Law::Ulaw).unwrap();
    engine
        .play(id, LegSide::Callee, prompt, false)
        .await
        .unwrap();
    // While it plays, the caller's audio does not reach the callee.
    caller
        .send_to(&rtp(1, 0xCA11, &[0x55; 160]), to_caller_leg)
        .unwrap();
    let mut arrivals = Vec::new();
    let mut buf = [0u8; 2048];
    let end = Instant::now() + Duration::from_secs(5);
    while arrivals.len() < 50 && Instant::now() < end {
        if let Ok((n, _)) = callee.recv_from(&mut buf) {
            let packet = RtpPacket::parse(&buf[..n]).unwrap();
            arrivals.push((
                Instant::now(),
                packet.sequence(),
                packet.timestamp(),
                packet.marker(),
                packet.ssrc(),
                n,
            ));
        }
    }
    assert_eq!(arrivals.len(), 50, "one second of prompt is 50 packets");
    assert!(
        arrivals.iter().all(|a| a.4 != 0xCA11),
        "no relayed packet while the prompt plays"
    );
    assert!(
        arrivals[0].3 && arrivals[1..].iter().all(|a| !a.3),
        "marker on the first packet only"
    );
    for pair in arrivals.windows(2) {
        assert_eq!(pair[1].1, pair[0].1.wrapping_add(1));
        assert_eq!(pair[1].2, pair[0].2.wrapping_add(160));
        assert_eq!(pair[1].5, 172);
    }
    let span = arrivals[49].0 - arrivals[0].0;
    let mean = span / 49;
    assert!(
        mean >= Duration::from_micros(19_000) && mean <= Duration::from_micros(21_000),
        "mean packet interval {mean:?}, wanted 20 ms +- 1 ms"
    );
    assert_eq!(
        next_event(&mut events, id).await,
        MediaEvent::PlaybackFinished {
            leg: LegSide::Callee
        }
    );
    // After the prompt the callee hears the caller again.
    caller
        .send_to(&rtp(2, 0xCA11, &[0x55; 160]), to_caller_leg)
        .unwrap();
    let got = receive(&callee, 1, Duration::from_secs(5));
    assert_eq!(RtpPacket::parse(&got[0].0).unwrap().ssrc(), 0xCA11);
    engine.destroy(id).await.unwrap();
}

#[tokio::test]
async fn looping_music_on_hold_runs_until_stopped() {
    use crate::media::playback::Prompt;
    let engine = engine();
    let (caller, callee) = (socket(), socket());
    let (id, _, _) = sdp_session(&engine, &caller, &callee).await;
    let prompt = Prompt::from_linear(&[1000i16; 400], crate::media::g711::Law::Alaw).unwrap();
    engine
        .play(id, LegSide::Caller, prompt, true)
        .await
        .unwrap();
    // 400 samples is 2.5 packets; looping keeps going well past that.
    let got = receive(&caller, 10, Duration::from_secs(5));
    assert_eq!(got.len(), 10);
    // Transcoded to the caller's law (PCMU, payload type 0).
    assert!(
        got.iter()
            .all(|(p, _)| RtpPacket::parse(p).unwrap().payload_type() == 0)
    );
    engine.stop_playback(id, LegSide::Caller).unwrap();
    engine.stats(id).await.unwrap(); // the stop has been handled
    while caller.recv_from(&mut [0u8; 2048]).is_ok() {}
    assert!(
        receive(&caller, 1, Duration::from_millis(300)).is_empty(),
        "stopped"
    );
    engine.destroy(id).await.unwrap();
}

#[tokio::test]
async fn separate_rtcp_ports_carry_rtcp_and_its_reports_reach_the_stats() {
    use crate::media::rtcp::{ReportBlock, write_receiver_report};
    use crate::media::sdp::SessionDescription;
    let engine = engine();
    let (caller, caller_rtcp, callee, callee_rtcp) = (socket(), socket(), socket(), socket());
    let id = engine.create_session("acme", "call-rtcp").unwrap();
    // No rtcp-mux from either side; RTCP on explicit a=rtcp ports.
    let offer = format!(
        "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0\r\na=rtcp:{}\r\n",
        caller.local_addr().unwrap().port(),
        caller_rtcp.local_addr().unwrap().port()
    );
    let offer = SessionDescription::parse(
        &engine
            .offer(id, LegSide::Caller, &offer, None)
            .await
            .unwrap(),
    )
    .unwrap();
    let answer = format!(
        "v=0\r\no=b 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0\r\na=rtcp:{}\r\n",
        callee.local_addr().unwrap().port(),
        callee_rtcp.local_addr().unwrap().port()
    );
    let answer =
        SessionDescription::parse(&engine.answer(id, LegSide::Callee, &answer).await.unwrap())
            .unwrap();
    let caller_media = &answer.media()[0];
    assert!(
        !caller_media.rtcp_mux(),
        "the caller did not offer mux, so it gets none"
    );
    let caller_leg_rtcp = SocketAddr::new(audio_addr(&answer), caller_media.rtcp().unwrap().port);
    let callee_leg_rtcp =
        SocketAddr::new(audio_addr(&offer), offer.media()[0].rtcp().unwrap().port);
    assert_eq!(caller_leg_rtcp.port(), caller_media.port() + 1);

    // The callee reports 25% loss of what we send it; the report goes on to the caller's
    // RTCP address, and the callee leg's stats show it.
    let block = ReportBlock {
        ssrc: 1,
        fraction_lost: 64,
        cumulative_lost: 5,
        highest_seq: 100,
        jitter: 80,
        lsr: 0,
        dlsr: 0,
    };
    let mut buf = [0u8; 128];
    let len = write_receiver_report(0xB0B, &[block], &mut buf).unwrap();
    callee_rtcp.send_to(&buf[..len], callee_leg_rtcp).unwrap();
    let got = receive(&caller_rtcp, 1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, buf[..len].to_vec());
    assert_eq!(
        got[0].1, caller_leg_rtcp,
        "RTCP leaves from the leg's RTCP port"
    );
    let stats = engine.stats(id).await.unwrap();
    assert_eq!(stats.callee.rtcp_received, 1);
    assert_eq!(stats.callee.remote_fraction_lost, 0.25);
    assert_eq!(stats.callee.remote_jitter_ms, 10.0);
    engine.destroy(id).await.unwrap();
}

#[tokio::test]
async fn ipv6_legs_relay_over_ipv6() {
    use crate::media::engine::MediaConfig;
    let Ok(probe) = UdpSocket::bind("[::1]:0") else {
        panic!(
            "this test needs IPv6 on loopback (::1); enable it (sysctl net.ipv6.conf.lo.disable_ipv6=0)"
        );
    };
    let mut config = MediaConfig::loopback(test_ports());
    config.bind_v6 = Some(std::net::Ipv6Addr::LOCALHOST);
    let engine = MediaEngine::start(config).unwrap();
    let callee = probe;
    callee
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let caller = socket(); // IPv4 caller, IPv6 callee: the relay bridges the families.
    let id = engine.create_session("acme", "call-v6").unwrap();
    let offer = engine
        .offer(
            id,
            LegSide::Caller,
            &offer_sdp(caller.local_addr().unwrap().port()),
            Some(Family::V6),
        )
        .await
        .unwrap();
    assert!(offer.contains("c=IN IP6 ::1"), "{offer}");
    let answer = format!(
        "v=0\r\no=b 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio {} RTP/AVP 0\r\na=rtcp-mux\r\n",
        callee.local_addr().unwrap().port()
    );
    let answer = engine.answer(id, LegSide::Callee, &answer).await.unwrap();
    assert!(answer.contains("c=IN IP4 127.0.0.1"), "{answer}");
    let to_callee_leg: SocketAddr = {
        let sdp = crate::media::sdp::SessionDescription::parse(&offer).unwrap();
        SocketAddr::new(audio_addr(&sdp), sdp.media()[0].port())
    };
    let to_caller_leg: SocketAddr = {
        let sdp = crate::media::sdp::SessionDescription::parse(&answer).unwrap();
        SocketAddr::new(audio_addr(&sdp), sdp.media()[0].port())
    };
    for seq in 0..20 {
        caller
            .send_to(&rtp(seq, 4, &[4; 160]), to_caller_leg)
            .unwrap();
        callee
            .send_to(&rtp(seq, 6, &[6; 160]), to_callee_leg)
            .unwrap();
    }
    assert_eq!(receive(&callee, 20, Duration::from_secs(5)).len(), 20);
    assert_eq!(receive(&caller, 20, Duration::from_secs(5)).len(), 20);
    engine.destroy(id).await.unwrap();
}

#[tokio::test]
async fn a_new_ssrc_mid_call_is_relayed_and_counted_without_false_loss() {
    let engine = engine();
    let (caller, callee) = (socket(), socket());
    let (id, [to_caller_leg, _]) = session(&engine, &caller, &callee).await;
    // 30 packets from one source, then the phone restarts its stream (new SSRC, new
    // random sequence) as after a transfer or a re-INVITE.
    for seq in 100..130u16 {
        caller
            .send_to(&rtp(seq, 0x1111, &[1; 160]), to_caller_leg)
            .unwrap();
    }
    for seq in 40_000..40_030u16 {
        caller
            .send_to(&rtp(seq, 0x2222, &[2; 160]), to_caller_leg)
            .unwrap();
    }
    assert_eq!(receive(&callee, 60, Duration::from_secs(5)).len(), 60);
    let stats = engine.destroy(id).await.unwrap();
    assert_eq!(stats.caller.packets_received, 60);
    assert_eq!(stats.caller.ssrc_changes, 1);
    assert_eq!(
        stats.caller.packets_lost, 0,
        "a new stream is not a 40,000-packet gap"
    );
    assert_eq!(stats.caller.loss_ratio, 0.0);
}

#[tokio::test]
async fn a_source_silent_for_the_relatch_time_is_replaced_by_a_new_one() {
    use crate::media::engine::MediaConfig;
    let mut config = MediaConfig::loopback(test_ports());
    config.relatch_after = Duration::from_millis(200);
    let engine = MediaEngine::start(config).unwrap();
    let (caller, callee) = (socket(), socket());
    let (id, [to_caller_leg, to_callee_leg]) = session(&engine, &caller, &callee).await;
    caller
        .send_to(&rtp(1, 7, &[1; 160]), to_caller_leg)
        .unwrap();
    assert_eq!(receive(&callee, 1, Duration::from_secs(5)).len(), 1);
    // The phone's NAT mapping changes: the same stream now comes from another port. The
    // old source is silent, so after the re-latch time the new one wins.
    let moved = socket();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seq = 2;
    let mut relayed = false;
    while !relayed && Instant::now() < deadline {
        moved
            .send_to(&rtp(seq, 7, &[1; 160]), to_caller_leg)
            .unwrap();
        seq += 1;
        relayed = !receive(&callee, 1, Duration::from_millis(50)).is_empty();
    }
    assert!(relayed, "the new source took over");
    // Media for the caller now goes to the new address.
    callee
        .send_to(&rtp(1, 9, &[2; 160]), to_callee_leg)
        .unwrap();
    assert_eq!(receive(&moved, 1, Duration::from_secs(5)).len(), 1);
    let stats = engine.destroy(id).await.unwrap();
    assert_eq!(stats.caller.latched, Some(moved.local_addr().unwrap()));
}

#[tokio::test]
async fn an_exhausted_port_range_is_a_clear_error_and_frees_up_again() {
    use crate::media::engine::{MediaConfig, MediaError};
    let base = test_ports().first_rtp();
    // Two pairs: exactly one session (a session takes a pair per leg).
    let config = MediaConfig::loopback(PortRange::new(base, base + 3).unwrap());
    let engine = MediaEngine::start(config).unwrap();
    let first = engine.create_session("acme", "one").unwrap();
    let err = engine.create_session("acme", "two").unwrap_err();
    assert!(matches!(err, MediaError::Ports(_)), "{err}");
    assert!(
        err.to_string().contains("widen the RTP port range"),
        "{err}"
    );
    assert_eq!(
        engine.ports_in_use(),
        (2, 0),
        "the failed session took nothing"
    );
    engine.destroy(first).await.unwrap();
    engine
        .create_session("acme", "three")
        .expect("ports are back");
}

#[tokio::test]
async fn a_call_silent_for_the_rtp_timeout_is_reported_inactive_once() {
    use crate::media::engine::MediaConfig;
    use crate::media::relay::MediaEvent;
    let mut config = MediaConfig::loopback(test_ports());
    config.rtp_timeout = Duration::from_millis(300);
    let engine = MediaEngine::start(config).unwrap();
    let mut events = engine.subscribe();
    let (caller, callee) = (socket(), socket());
    let (id, [to_caller_leg, _]) = session(&engine, &caller, &callee).await;
    caller
        .send_to(&rtp(1, 1, &[0; 160]), to_caller_leg)
        .unwrap();
    assert_eq!(receive(&callee, 1, Duration::from_secs(5)).len(), 1);
    // Then nothing: within the timeout plus one once-a-second check, one event.
    match next_event(&mut events, id).await {
        MediaEvent::Inactive { idle_ms } => assert!(idle_ms >= 300, "{idle_ms}"),
        other => panic!("unexpected {other:?}"),
    }
    let later = tokio::time::timeout(Duration::from_millis(2500), events.recv()).await;
    assert!(later.is_err(), "reported once, not every second: {later:?}");
    engine.destroy(id).await.unwrap();
}
