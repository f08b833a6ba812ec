//! The media plane end to end: the real `tongdai media` process, driven over its HTTP API,
//! relaying real G.711 packets between two phones on loopback.

use std::time::Duration;

use serde_json::json;
use tongdai_node::media::dtmf::ToneGenerator;
use tongdai_node::media::g711::Law;
use tongdai_tests::media::{MediaProc, Phone, call, channels, find_file, payloads, tone_power};
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

/// Waits until recording `id` is in the store under `dir`/recordings and returns its
/// metadata and its WAV bytes.
fn shipped(
    media: &MediaProc,
    dir: &std::path::Path,
    id: &str,
    within: Duration,
    what: &str,
) -> (serde_json::Value, Vec<u8>) {
    let store = dir.join("recordings");
    let name = format!("{id}.json");
    assert!(
        wait_until(within, || find_file(&store, &name).is_some()),
        "{what}:\n{}",
        media.log()
    );
    let meta = serde_json::from_slice(&std::fs::read(find_file(&store, &name).unwrap()).unwrap())
        .expect("metadata is JSON");
    let wav = std::fs::read(find_file(&store, &format!("{id}.wav")).expect("the WAV is stored"))
        .expect("read the WAV");
    (meta, wav)
}

fn recording_args(media_dir: &std::path::Path) -> Vec<String> {
    vec![
        "--spool".into(),
        media_dir.join("spool").display().to_string(),
        "--recordings".into(),
        media_dir.join("recordings").display().to_string(),
    ]
}

fn start_recording(media: &MediaProc, id: &str) -> String {
    let (code, answer) = media.api(
        "POST",
        &format!("/v1/media/sessions/{id}/recording"),
        Some(&json!({"action": "start"})),
    );
    assert_eq!(code, 200, "{answer}");
    answer["recording"]
        .as_str()
        .expect("recording id")
        .to_owned()
}

#[test]
fn a_recording_has_the_caller_left_the_callee_right_and_silence_while_paused() {
    let dir = tongdai_tests::TempDir::new("rec");
    let args = recording_args(dir.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let media = MediaProc::start(&args);
    let (mut caller, mut callee) = (Phone::new(0xA), Phone::new(0xB));
    let (id, to_caller_leg, to_callee_leg) = call(&media, &caller, &callee, "acme");
    let recording = start_recording(&media, &id);

    // Two seconds of 440 Hz from the caller and 1 kHz from the callee, with the
    // recording paused from 0.8 s to 1.2 s (a card number being read out).
    let mut low = ToneGenerator::single(440.0, -10.0);
    let mut high = ToneGenerator::single(1000.0, -10.0);
    let start = std::time::Instant::now();
    for n in 0..PACKETS {
        if n == 40 || n == 60 {
            let action = if n == 40 { "pause" } else { "resume" };
            let (code, _) = media.api(
                "POST",
                &format!("/v1/media/sessions/{id}/recording"),
                Some(&json!({"action": action})),
            );
            assert_eq!(code, 200);
        }
        let (mut a, mut b) = ([0u8; 160], [0u8; 160]);
        low.fill_g711(Law::Ulaw, &mut a);
        high.fill_g711(Law::Ulaw, &mut b);
        caller.send(to_caller_leg, 0, &a, n == 0);
        callee.send(to_callee_leg, 0, &b, n == 0);
        caller.tick();
        callee.tick();
        let due = start + Duration::from_millis(20 * (n as u64 + 1));
        std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
    }
    let (code, answer) = media.api(
        "POST",
        &format!("/v1/media/sessions/{id}/recording"),
        Some(&json!({"action": "stop"})),
    );
    assert_eq!(code, 200, "{answer}");

    let (meta, wav_bytes) = shipped(
        &media,
        dir.path(),
        &recording,
        Duration::from_secs(10),
        "the recording reaches the store",
    );
    use sha2::Digest;
    assert_eq!(
        meta["sha256"],
        hex::encode(sha2::Sha256::digest(&wav_bytes)),
        "{meta}"
    );
    assert_eq!(meta["tenant"], "acme");
    assert_eq!(meta["complete"], true);
    let duration_ms = meta["duration_ms"].as_u64().unwrap();
    assert!(
        (1900..=2600).contains(&duration_ms),
        "about two seconds: {meta}"
    );

    let (left, right) = channels(&wav_bytes);
    // Compare the tones in the first 0.7 s (before the pause).
    let (l, r) = (&left[800..5600], &right[800..5600]);
    assert!(
        tone_power(l, 440.0) > 100.0 * tone_power(l, 1000.0),
        "left is the caller's 440 Hz"
    );
    assert!(
        tone_power(r, 1000.0) > 100.0 * tone_power(r, 440.0),
        "right is the callee's 1 kHz"
    );
    let (l, r) = (&left[12_800..], &right[12_800..]);
    assert!(
        tone_power(l, 440.0) > 100.0 * tone_power(l, 1000.0),
        "and again after the pause"
    );
    assert!(tone_power(r, 1000.0) > 100.0 * tone_power(r, 440.0));
    // The middle of the pause (0.9 s to 1.1 s) is silent in both channels.
    let paused = |c: &[i16]| {
        c[7200..8800]
            .iter()
            .map(|&s| i64::from(s).abs())
            .max()
            .unwrap_or(0)
    };
    assert!(
        paused(&left) < 50 && paused(&right) < 50,
        "silence while paused"
    );
    media.api("DELETE", &format!("/v1/media/sessions/{id}"), None);
}

#[test]
fn after_kill_9_mid_call_the_partial_recording_is_repaired_and_shipped_on_restart() {
    let dir = tongdai_tests::TempDir::new("rec-crash");
    let args = recording_args(dir.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut media = MediaProc::start(&args);
    let (mut caller, mut callee) = (Phone::new(0xA), Phone::new(0xB));
    let (id, to_caller_leg, to_callee_leg) = call(&media, &caller, &callee, "acme");
    let recording = start_recording(&media, &id);
    let spool_wav = dir.path().join("spool").join(format!("{recording}.wav"));
    let mut tone = ToneGenerator::single(440.0, -10.0);
    let start = std::time::Instant::now();
    let mut n = 0u64;
    // Stream until the recorder has written at least half a second to the spool.
    let written = wait_until(Duration::from_secs(10), || {
        let mut a = [0u8; 160];
        tone.fill_g711(Law::Ulaw, &mut a);
        caller.send(to_caller_leg, 0, &a, n == 0);
        callee.send(to_callee_leg, 0, &a, n == 0);
        caller.tick();
        callee.tick();
        n += 1;
        let due = start + Duration::from_millis(20 * n);
        std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
        std::fs::metadata(&spool_wav).is_ok_and(|m| m.len() > 44 + 4 * 4000)
    });
    assert!(
        written,
        "the spool file grows while the call runs:\n{}",
        media.log()
    );
    media.kill9();
    assert!(
        spool_wav.exists(),
        "the partial recording is left in the spool"
    );

    media.spawn(&args);
    let (meta, wav_bytes) = shipped(
        &media,
        dir.path(),
        &recording,
        Duration::from_secs(15),
        "the repaired recording is shipped after the restart",
    );
    assert_eq!(meta["repaired"], true, "{meta}");
    let (left, _) = channels(&wav_bytes);
    assert!(
        left.len() >= 4000,
        "at least half a second survived: {} frames",
        left.len()
    );
    assert!(!spool_wav.exists(), "the spool is emptied once shipped");
}

#[test]
fn sigterm_mid_call_finishes_and_ships_the_recording() {
    let dir = tongdai_tests::TempDir::new("rec-term");
    let args = recording_args(dir.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut media = MediaProc::start(&args);
    let (mut caller, callee) = (Phone::new(0xA), Phone::new(0xB));
    let (id, to_caller_leg, _) = call(&media, &caller, &callee, "acme");
    let recording = start_recording(&media, &id);
    for n in 0..25 {
        caller.send(to_caller_leg, 0, &[0x55; 160], n == 0);
        caller.tick();
    }
    assert_eq!(
        media.terminate(Duration::from_secs(30)),
        Some(0),
        "{}",
        media.log()
    );
    let store = dir.path().join("recordings");
    let meta = find_file(&store, &format!("{recording}.json")).expect("shipped before exit");
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(meta).unwrap()).unwrap();
    assert_eq!(meta["complete"], true, "{meta}");
    assert!(
        std::fs::read_dir(dir.path().join("spool"))
            .unwrap()
            .next()
            .is_none(),
        "spool empty"
    );
}
