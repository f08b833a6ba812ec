//! The media plane end to end: the real `tongdai media` process, driven over its HTTP API,
//! relaying real G.711 packets between two phones on loopback.

use std::time::Duration;

use serde_json::json;
use tongdai_node::media::dtmf::ToneGenerator;
use tongdai_node::media::g711::Law;
use tongdai_tests::media::{MediaProc, Phone, call, payloads};
use tongdai_tests::wait_until;

/// Packets each phone sends: two seconds of audio at 20 ms.
const PACKETS: usize = 100;

/// Paces both phones at 20 ms for `PACKETS` packets: the caller a 440 Hz tone, the callee
/// 1 kHz. Returns the payloads each sent.
fn stream_tones(
    caller: &mut Phone,
    to_caller_leg: std::net::SocketAddr,
    callee: &mut Phone,
    to_callee_leg: std::net::SocketAddr,
) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut low = ToneGenerator::single(440.0, -10.0);
    let mut high = ToneGenerator::single(1000.0, -10.0);
    let (mut sent_a, mut sent_b) = (Vec::new(), Vec::new());
    let start = std::time::Instant::now();
    for n in 0..PACKETS {
        let mut a = [0u8; 160];
        let mut b = [0u8; 160];
        low.fill_g711(Law::Ulaw, &mut a);
        high.fill_g711(Law::Ulaw, &mut b);
        caller.send(to_caller_leg, 0, &a, n == 0);
        callee.send(to_callee_leg, 0, &b, n == 0);
        caller.tick();
        callee.tick();
        sent_a.push(a.to_vec());
        sent_b.push(b.to_vec());
        // Real-time pacing of the generated stream (not a wait for a condition).
        let due = start + Duration::from_millis(20 * (n as u64 + 1));
        std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
    }
    (sent_a, sent_b)
}

#[test]
fn g711_both_ways_counts_match_and_latching_follows_the_real_source() {
    let media = MediaProc::start(&[]);
    // The caller announces one port but sends from another (a NAT rewrote it).
    let caller_sdp = Phone::new(0xCA11);
    let mut caller = Phone::new(0xCA11);
    let mut callee = Phone::new(0xCA1E);
    let (id, to_caller_leg, to_callee_leg) = call(&media, &caller_sdp, &callee, "acme");
    let (sent_a, sent_b) = stream_tones(&mut caller, to_caller_leg, &mut callee, to_callee_leg);

    let (mut at_callee, mut at_caller) = (Vec::new(), Vec::new());
    let all_arrived = wait_until(Duration::from_secs(5), || {
        at_callee.extend(callee.drain());
        at_caller.extend(caller.drain());
        at_callee.len() >= PACKETS && at_caller.len() >= PACKETS
    });
    assert!(
        all_arrived,
        "callee got {}, caller got {}",
        at_callee.len(),
        at_caller.len()
    );
    assert_eq!(
        payloads(&at_callee, 0),
        sent_a,
        "the callee hears exactly the caller's audio"
    );
    assert_eq!(
        payloads(&at_caller, 0),
        sent_b,
        "the caller (at its NAT address) hears the callee"
    );
    assert!(
        caller_sdp.drain().is_empty(),
        "nothing goes to the SDP address once latched"
    );

    let (code, stats) = media.api("GET", &format!("/v1/media/sessions/{id}/stats"), None);
    assert_eq!(code, 200, "{stats}");
    assert_eq!(stats["caller"]["packets_received"], PACKETS);
    assert_eq!(stats["callee"]["packets_received"], PACKETS);
    assert_eq!(stats["caller"]["packets_lost"], 0);
    assert_eq!(
        stats["caller"]["latched"],
        caller.socket.local_addr().unwrap().to_string()
    );
    let (code, last) = media.api("DELETE", &format!("/v1/media/sessions/{id}"), None);
    assert_eq!(code, 200, "{last}");
    let mos = last["caller"]["mos"].as_f64().expect("a MOS");
    assert!(mos > 4.0, "no loss, little jitter: MOS {mos}");
    let metrics = media.metrics();
    assert!(
        metrics.contains("tongdai_media_mos_count{tenant=\"acme\"} 2"),
        "per-tenant MOS histogram:\n{metrics}"
    );
    assert_eq!(
        media
            .api("GET", &format!("/v1/media/sessions/{id}/stats"), None)
            .0,
        404
    );
}

#[test]
fn bad_requests_get_a_4xx_naming_the_field() {
    let media = MediaProc::start(&[]);
    let cases = [
        (
            "POST",
            "/v1/media/sessions".to_owned(),
            json!({"call_id": "x"}),
            400,
            "tenant",
        ),
        (
            "POST",
            "/v1/media/sessions".to_owned(),
            json!({"call_id": "x", "tenant": ""}),
            400,
            "tenant",
        ),
        (
            "POST",
            "/v1/media/sessions/nothex/offer".to_owned(),
            json!({"sdp": "v=0"}),
            400,
            "id",
        ),
        (
            "POST",
            "/v1/media/sessions/00000000000000ff/offer".to_owned(),
            json!({"sdp": "v=0"}),
            404,
            "id",
        ),
    ];
    for (method, path, body, status, field) in cases {
        let (code, answer) = media.api(method, &path, Some(&body));
        assert_eq!(
            (code, answer["field"].as_str()),
            (status, Some(field)),
            "{method} {path} {body}: {answer}"
        );
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let (_, created) = media.api(
        "POST",
        "/v1/media/sessions",
        Some(&json!({"call_id": "c", "tenant": "t"})),
    );
    let id = created["id"].as_str().unwrap();
    let (code, answer) = media.api(
        "POST",
        &format!("/v1/media/sessions/{id}/offer"),
        Some(&json!({"sdp": "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"})),
    );
    assert_eq!(
        (code, answer["field"].as_str()),
        (400, Some("sdp")),
        "{answer}"
    );
    assert!(
        answer["error"].as_str().unwrap().contains("line"),
        "names the line: {answer}"
    );
    let (code, answer) = media.api(
        "POST",
        &format!("/v1/media/sessions/{id}/answer"),
        Some(&json!({"sdp": "v=0"})),
    );
    assert_eq!(code, 400, "{answer}");
    let (code, answer) = media.api(
        "POST",
        &format!("/v1/media/sessions/{id}/play"),
        Some(&json!({"leg": "caller", "prompt": "../etc/passwd"})),
    );
    assert_eq!(
        (code, answer["field"].as_str()),
        (400, Some("prompt")),
        "{answer}"
    );
    assert!(
        media.log().lines().all(|l| !l.contains("panicked")),
        "{}",
        media.log()
    );
}

#[test]
fn sigterm_ends_the_sessions_and_exits_zero() {
    let mut media = MediaProc::start(&[]);
    let (caller, callee) = (Phone::new(1), Phone::new(2));
    let _ = call(&media, &caller, &callee, "acme");
    assert_eq!(
        media.terminate(Duration::from_secs(10)),
        Some(0),
        "{}",
        media.log()
    );
}
