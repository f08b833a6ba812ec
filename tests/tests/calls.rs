//! Calls through a real `tongdai up` with real SIPp phones: registration, digest-challenged
//! INVITE, media anchored on the node's relay both ways, BYE.

use std::time::Duration;

use tongdai_tests::calls::{Sipp, newest_cdr, post, register, ulaw_tone};
use tongdai_tests::{Node, sipp_users, wait_until};

/// A node whose demo tenant `e2e` has extensions 2000.. with passwords `pw<ext>`; MD5 is
/// offered first because SIPp 3.6 answers only MD5 challenges.
fn node() -> Node {
    node_with("")
}

/// [`node`] with more config sections.
fn node_with(extra: &str) -> Node {
    Node::start(&format!(
        "[registrar]\nalgorithms = [\"MD5\", \"SHA-256\"]\n\
         [demo]\nrealm = \"e2e\"\nfirst_extension = 2000\ncount = 10\npassword_prefix = \"pw\"\n{extra}"
    ))
}

/// Injection line for a caller: extension, credentials, domain, dialled number.
fn caller(ext: u32, dialled: &str) -> Vec<String> {
    sipp_users(ext, 1, |e| format!("pw{e}"), "e2e")
        .into_iter()
        .map(|l| format!("{l};{dialled}"))
        .collect()
}

#[test]
fn internal_call_between_two_registered_phones_relays_media_both_ways() {
    let node = node();
    let callee_port = tongdai_tests::calls::free_udp_port();
    register(&node, 2001, "e2e", callee_port);
    let callee = Sipp::new("call_uas.xml")
        .port(callee_port)
        .file("callee.ulaw", ulaw_tone(1000.0, 5.0))
        .timeout(Duration::from_secs(30))
        .spawn();
    place_call(&node, 2000, "2001", 2, 30);
    let callee = callee.wait(Duration::from_secs(30));
    assert_eq!(callee.successful, 1, "callee: {callee:?}");
    let cdr = newest_cdr(&node, "e2e", 1);
    assert_eq!(cdr["sip_status"], 200, "{cdr}");
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
    assert_eq!(cdr["direction"], "internal", "{cdr}");
    assert_eq!(cdr["caller"], "2000", "{cdr}");
    assert_eq!(cdr["callee"], "2001", "{cdr}");
    assert_eq!(cdr["hangup_by"], "caller", "{cdr}");
    assert!(cdr["billable_secs"].as_u64().unwrap() >= 2, "{cdr}");
    // Two seconds at 50 packets/s each way, through the relay.
    for side in ["caller", "callee"] {
        let n = cdr["quality"][side]["packets"].as_u64().unwrap_or(0);
        assert!(n >= 50, "{side} sent {n} packets: {cdr}");
    }
}

/// Creates hunt group `sales` (members, strategy, 15 s, then `no_answer`) and the toll-free
/// number 18001234 pointing at it.
fn hunt_group(node: &Node, members: &[&str], strategy: &str, no_answer: &str) {
    let members = members
        .iter()
        .map(|m| format!("\"{m}\""))
        .collect::<Vec<_>>()
        .join(",");
    let (code, body) = node.api(
        "POST",
        "/v1/tenants/e2e/hunt-groups",
        Some(&format!(
            "{{\"id\":\"sales\",\"members\":[{members}],\"strategy\":\"{strategy}\",\
             \"ring_secs\":5,\"no_answer\":{no_answer}}}"
        )),
    );
    assert!((200..300).contains(&code), "hunt group: {code} {body}");
    let (code, body) = node.api(
        "POST",
        "/v1/tenants/e2e/numbers",
        Some(
            "{\"digits\":\"18001234\",\"destination\":{\"type\":\"hunt_group\",\"id\":\"sales\"}}",
        ),
    );
    assert!((200..300).contains(&code), "number: {code} {body}");
}

#[test]
fn ring_all_hunt_group_first_answer_wins_and_the_other_phone_gets_cancel_with_reason() {
    let node = node();
    hunt_group(
        &node,
        &["2001", "2002"],
        "ring_all",
        "{\"type\":\"extension\",\"id\":\"2009\"}",
    );
    let answer_port = tongdai_tests::calls::free_udp_port();
    let ring_port = tongdai_tests::calls::free_udp_port();
    register(&node, 2001, "e2e", answer_port);
    register(&node, 2002, "e2e", ring_port);
    let answers = Sipp::new("call_uas.xml")
        .port(answer_port)
        .file("callee.ulaw", ulaw_tone(1000.0, 5.0))
        .timeout(Duration::from_secs(30))
        .spawn();
    let rings = Sipp::new("call_uas_ring.xml")
        .port(ring_port)
        .timeout(Duration::from_secs(30))
        .spawn();
    place_call(&node, 2000, "18001234", 1, 30);
    let rang = rings.wait(Duration::from_secs(30));
    assert_eq!(rang.successful, 1, "the ringing phone: {rang:?}");
    assert!(rang.logs.contains("Call completed elsewhere"), "{rang:?}");
    let answered = answers.wait(Duration::from_secs(30));
    assert_eq!(answered.successful, 1, "the answering phone: {answered:?}");
}

/// Registers `ext` and starts a SIPp phone for it running `scenario`.
fn phone(node: &Node, ext: u32, scenario: &str) -> tongdai_tests::calls::SippPhone {
    let port = tongdai_tests::calls::free_udp_port();
    register(node, ext, "e2e", port);
    Sipp::new(scenario)
        .port(port)
        .file("callee.ulaw", ulaw_tone(1000.0, 5.0))
        .duration(Duration::from_secs(1))
        .timeout(Duration::from_secs(40))
        .spawn()
}

#[test]
fn the_caller_hangs_up_while_a_ring_all_group_rings() {
    let node = node();
    hunt_group(
        &node,
        &["2001", "2002"],
        "ring_all",
        "{\"type\":\"extension\",\"id\":\"2009\"}",
    );
    let a = phone(&node, 2001, "call_uas_noanswer.xml");
    let b = phone(&node, 2002, "call_uas_noanswer.xml");
    let run = Sipp::new("call_uac_cancel.xml")
        .target(node.sip)
        .users(caller(2000, "18001234"))
        .run();
    assert_eq!(
        run.successful,
        1,
        "caller: {run:?}\nnode:\n{}",
        node.stderr()
    );
    for (name, p) in [("2001", a), ("2002", b)] {
        let r = p.wait(Duration::from_secs(40));
        assert_eq!(r.successful, 1, "{name} was not cancelled: {r:?}");
    }
    let cdr = newest_cdr(&node, "e2e", 1);
    assert_eq!(cdr["sip_status"], 487, "{cdr}");
    assert_eq!(cdr["disposition"], "cancelled", "{cdr}");
    assert_eq!(cdr["hangup_by"], "caller", "{cdr}");
    let legs = cdr["legs"].as_array().unwrap();
    assert_eq!(legs.len(), 2, "{cdr}");
    assert!(legs.iter().all(|l| l["status"] == 487), "{cdr}");
}

#[test]
fn sequential_hunt_moves_on_from_a_member_that_never_answers() {
    let node = node();
    hunt_group(
        &node,
        &["2001", "2002"],
        "sequential",
        "{\"type\":\"extension\",\"id\":\"2009\"}",
    );
    let first = phone(&node, 2001, "call_uas_noanswer.xml");
    let second = phone(&node, 2002, "call_uas.xml");
    place_call(&node, 2000, "18001234", 1, 40);
    let r = first.wait(Duration::from_secs(40));
    assert_eq!(
        r.successful, 1,
        "the first member was not rung then cancelled: {r:?}"
    );
    let r = second.wait(Duration::from_secs(40));
    assert_eq!(r.successful, 1, "the second member did not answer: {r:?}");
    let cdr = newest_cdr(&node, "e2e", 1);
    assert_eq!(cdr["destination"], "hunt_group:sales", "{cdr}");
    let legs: Vec<(String, u64)> = cdr["legs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["target"].as_str().unwrap().to_owned(),
                l["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        legs,
        [
            ("extension:2001".to_owned(), 487),
            ("extension:2002".to_owned(), 200)
        ],
        "{cdr}"
    );
}

#[test]
fn the_callee_hangs_up_and_the_caller_gets_bye() {
    let node = node();
    let callee = phone(&node, 2001, "call_uas_bye.xml");
    let run = Sipp::new("call_uac_wait_bye.xml")
        .target(node.sip)
        .users(caller(2000, "2001"))
        .file("caller.ulaw", ulaw_tone(440.0, 5.0))
        .timeout(Duration::from_secs(30))
        .run();
    assert_eq!(
        run.successful,
        1,
        "caller: {run:?}\nnode:\n{}",
        node.stderr()
    );
    let r = callee.wait(Duration::from_secs(30));
    assert_eq!(r.successful, 1, "callee: {r:?}");
    let cdr = newest_cdr(&node, "e2e", 1);
    assert_eq!(cdr["hangup_by"], "callee", "{cdr}");
    assert_eq!(cdr["hangup_reason"], "bye", "{cdr}");
}

#[test]
fn hold_plays_music_on_hold_to_the_held_party_and_resume_brings_the_caller_back() {
    let node = node();
    let port = tongdai_tests::calls::free_udp_port();
    register(&node, 2001, "e2e", port);
    // The held party's audio is ours to inspect: its SDP points at this socket.
    let media = tongdai_tests::media::Phone::new(7);
    let callee = Sipp::new("call_uas_media.xml")
        .port(port)
        .key("rtp_port", media.port())
        .timeout(Duration::from_secs(40))
        .spawn();
    let collector = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(25);
        let mut packets = Vec::new();
        while std::time::Instant::now() < deadline {
            packets.extend(media.drain());
            std::thread::sleep(Duration::from_millis(5));
        }
        packets
    });
    let run = Sipp::new("call_uac_hold.xml")
        .target(node.sip)
        .users(caller(2000, "2001"))
        .duration(Duration::from_secs(3))
        .file("caller.ulaw", ulaw_tone(440.0, 10.0))
        .timeout(Duration::from_secs(40))
        .run();
    assert_eq!(
        run.successful,
        1,
        "caller: {run:?}\nnode:\n{}",
        node.stderr()
    );
    assert!(
        run.logs.contains("hold answered: a=recvonly"),
        "{}",
        run.logs
    );
    assert!(
        run.logs.contains("resume answered: a=sendrecv"),
        "{}",
        run.logs
    );
    let r = callee.wait(Duration::from_secs(40));
    assert_eq!(r.successful, 1, "callee: {r:?}");
    let packets = collector.join().unwrap();
    // Group what the held party heard by SSRC: the caller's voice, and the music.
    let mut by_ssrc: std::collections::BTreeMap<u32, Vec<i16>> = Default::default();
    for p in &packets {
        if p.len() > 12 && p[1] & 0x7f == 0 {
            let ssrc = u32::from_be_bytes([p[8], p[9], p[10], p[11]]);
            let law = tongdai_node::media::g711::Law::Ulaw;
            by_ssrc
                .entry(ssrc)
                .or_default()
                .extend(p[12..].iter().map(|&b| law.decode(b)));
        }
    }
    assert_eq!(
        by_ssrc.len(),
        2,
        "expected the caller and the music: {:?}",
        by_ssrc.keys()
    );
    let (music, voice): (Vec<_>, Vec<_>) = by_ssrc.values().partition(|s| {
        tongdai_tests::media::tone_power(s, 523.25) > tongdai_tests::media::tone_power(s, 440.0)
    });
    let (music, voice) = (&music[0], &voice[0]);
    // Three seconds on hold: about 150 packets of 160 samples.
    assert!(
        music.len() >= 100 * 160,
        "music on hold: {} samples",
        music.len()
    );
    assert!(
        voice.len() >= 50 * 160,
        "caller's voice: {} samples",
        voice.len()
    );
    assert!(
        tongdai_tests::media::tone_power(voice, 440.0)
            > 100.0 * tongdai_tests::media::tone_power(voice, 523.25)
    );
}

#[test]
fn bad_requests_inside_a_call_get_their_errors_and_other_calls_go_on() {
    let node = node();
    let callee = phone(&node, 2001, "call_uas.xml");
    let other_callee = phone(&node, 2003, "call_uas.xml");
    let other = {
        let sip = node.sip;
        std::thread::spawn(move || {
            Sipp::new("call_uac.xml")
                .target(sip)
                .users(caller(2002, "2003"))
                .duration(Duration::from_secs(4))
                .file("caller.ulaw", ulaw_tone(440.0, 10.0))
                .timeout(Duration::from_secs(40))
                .run()
        })
    };
    let run = Sipp::new("call_uac_bad.xml")
        .target(node.sip)
        .users(caller(2000, "2001"))
        .timeout(Duration::from_secs(30))
        .run();
    assert_eq!(
        run.successful,
        1,
        "caller: {run:?}\nnode:\n{}",
        node.stderr()
    );
    for line in [
        "old cseq: 500",
        "unknown dialog: 481",
        "malformed sdp: 400",
        "bye: 200",
    ] {
        assert!(run.logs.contains(line), "missing {line:?}: {}", run.logs);
    }
    assert_eq!(callee.wait(Duration::from_secs(30)).successful, 1);
    let other = other.join().unwrap();
    assert_eq!(other.successful, 1, "the other call: {other:?}");
    assert_eq!(other_callee.wait(Duration::from_secs(30)).successful, 1);
}

#[test]
fn refused_calls_say_why() {
    let node = node();
    // An unregistered extension without forwarding.
    let run = Sipp::new("call_uac_refused.xml")
        .target(node.sip)
        .users(caller(2000, "2005"))
        .run();
    assert_eq!(run.successful, 1, "{run:?}\nnode:\n{}", node.stderr());
    assert!(
        run.logs
            .contains("refused 480 Extension 2005 is not registered"),
        "{}",
        run.logs
    );
    // An outbound call presenting a 1800 number as caller ID (From), authenticated as
    // extension 2000.
    let users = vec![format!(
        "18001234;[authentication username=2000 password=pw2000];e2e;0912345678"
    )];
    let run = Sipp::new("call_uac_refused.xml")
        .target(node.sip)
        .users(users)
        .run();
    assert_eq!(run.successful, 1, "{run:?}");
    assert!(
        run.logs
            .contains("refused 403 1800/1900 numbers are inbound only"),
        "{}",
        run.logs
    );
    // Something that is no extension, group or number of the tenant.
    let run = Sipp::new("call_uac_refused.xml")
        .target(node.sip)
        .users(caller(2000, "nobody"))
        .run();
    assert!(run.logs.contains("refused 404"), "{}", run.logs);
}

/// The tenant's call settings replaced by `calls` (JSON), keeping its name and quotas.
fn set_calls(node: &Node, calls: &str) {
    tongdai_tests::calls::set_calls(node, "e2e", calls);
}

#[test]
fn a_carrier_call_to_1800_rings_all_is_recorded_caller_left_callee_right() {
    let rec = tongdai_tests::TempDir::new("recordings");
    let store = rec.path().join("store");
    let node = Node::start(&format!(
        "[registrar]\nalgorithms = [\"MD5\", \"SHA-256\"]\n\
         [media]\nspool_dir = \"{}\"\nrecordings_dir = \"{}\"\n\
         [demo]\nrealm = \"e2e\"\nfirst_extension = 2000\ncount = 10\npassword_prefix = \"pw\"\n",
        rec.path().join("spool").display(),
        store.display()
    ));
    let carrier_port = tongdai_tests::calls::free_udp_port();
    post(
        &node,
        "/v1/tenants/e2e/trunks",
        &format!(
            "{{\"id\":\"carrier\",\"address\":\"127.0.0.1:9\",\
             \"trusted_sources\":[\"127.0.0.1:{carrier_port}\"],\"max_concurrent_calls\":10}}"
        ),
    );
    set_calls(&node, "{\"recording\":\"always\"}");
    hunt_group(
        &node,
        &["2001", "2002"],
        "ring_all",
        "{\"type\":\"extension\",\"id\":\"2009\"}",
    );
    let answers = phone(&node, 2001, "call_uas.xml");
    let rings = phone(&node, 2002, "call_uas_ring.xml");
    let run = Sipp::new("call_trunk_uac.xml")
        .target(node.sip)
        .port(carrier_port)
        .users(vec!["0912345678;-;e2e;18001234".into()])
        .duration(Duration::from_secs(2))
        .file("caller.ulaw", ulaw_tone(440.0, 5.0))
        .timeout(Duration::from_secs(30))
        .run();
    assert_eq!(
        run.successful,
        1,
        "carrier: {run:?}\nnode:\n{}",
        node.stderr()
    );
    let rang = rings.wait(Duration::from_secs(30));
    assert_eq!(rang.successful, 1, "the ringing phone: {rang:?}");
    assert_eq!(answers.wait(Duration::from_secs(30)).successful, 1);
    let cdr = newest_cdr(&node, "e2e", 1);
    assert_eq!(cdr["direction"], "inbound", "{cdr}");
    assert_eq!(cdr["caller"], "0912345678", "{cdr}");
    assert_eq!(cdr["callee"], "18001234", "{cdr}");
    assert_eq!(cdr["number"], "18001234", "{cdr}");
    assert_eq!(cdr["number_kind"], "toll_free_1800", "{cdr}");
    assert_eq!(cdr["destination"], "hunt_group:sales", "{cdr}");
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
    assert_eq!(cdr["hangup_by"], "caller", "{cdr}");
    assert!(
        cdr["answer_ms"].as_u64() >= cdr["ringing_ms"].as_u64(),
        "{cdr}"
    );
    assert!(cdr["billable_secs"].as_u64().unwrap() >= 2, "{cdr}");
    assert!(cdr["rating"].is_null(), "only 1900 calls are rated: {cdr}");
    let mut legs: Vec<u64> = cdr["legs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["status"].as_u64().unwrap())
        .collect();
    legs.sort_unstable();
    assert_eq!(legs, [200, 487], "{cdr}");
    for side in ["caller", "callee"] {
        let q = &cdr["quality"][side];
        assert!(q["packets"].as_u64().unwrap() >= 50, "{cdr}");
        assert!(q["mos"].as_f64().unwrap() > 4.0, "{cdr}");
    }
    let id = cdr["recording_id"]
        .as_str()
        .expect("recording id")
        .to_owned();
    let name = format!("{id}.wav");
    assert!(
        wait_until(Duration::from_secs(15), || {
            tongdai_tests::media::find_file(&store, &name).is_some()
        }),
        "recording {id} not shipped:\n{}",
        node.stderr()
    );
    let wav = std::fs::read(tongdai_tests::media::find_file(&store, &name).unwrap()).unwrap();
    let (left, right) = tongdai_tests::media::channels(&wav);
    use tongdai_tests::media::tone_power;
    assert!(
        tone_power(&left, 440.0) > 100.0 * tone_power(&left, 1000.0),
        "left (caller) should be 440 Hz"
    );
    assert!(
        tone_power(&right, 1000.0) > 100.0 * tone_power(&right, 440.0),
        "right (callee) should be 1 kHz"
    );
}

#[test]
fn outbound_calls_and_forward_to_mobile_leave_by_the_trunk_with_the_tenant_did() {
    let node = node();
    let carrier = Sipp::new("call_uas_carrier.xml")
        .file("callee.ulaw", ulaw_tone(1000.0, 5.0))
        .calls(2, 10)
        .timeout(Duration::from_secs(40));
    let carrier_port = carrier_port_of(&carrier);
    let carrier = carrier.spawn();
    post(
        &node,
        "/v1/tenants/e2e/trunks",
        &format!(
            "{{\"id\":\"carrier\",\"address\":\"127.0.0.1:{carrier_port}\",\"max_concurrent_calls\":10}}"
        ),
    );
    post(
        &node,
        "/v1/tenants/e2e/numbers",
        "{\"digits\":\"02873001234\",\"destination\":{\"type\":\"extension\",\"id\":\"2000\"}}",
    );
    set_calls(
        &node,
        "{\"outbound_trunk\":\"carrier\",\"caller_id\":\"02873001234\"}",
    );
    let (code, body) = node.api(
        "PUT",
        "/v1/tenants/e2e/extensions/2005",
        Some(
            "{\"display_name\":\"Mobile worker\",\"password\":\"password2005\",\
             \"forward_to_mobile\":{\"number\":\"0912000111\",\"when\":[\"unregistered\"]}}",
        ),
    );
    assert_eq!(code, 200, "{body}");
    for dialled in ["0912345678", "2005"] {
        place_call(&node, 2000, dialled, 1, 30);
    }
    let carrier = carrier.wait(Duration::from_secs(40));
    assert_eq!(carrier.successful, 2, "carrier: {carrier:?}");
    for number in ["0912345678", "0912000111"] {
        let want = format!(
            "carrier got INVITE sip:{number}@127.0.0.1:{carrier_port} from  <sip:02873001234@"
        );
        assert!(
            carrier.logs.contains(&want),
            "missing {want:?} in:\n{}",
            carrier.logs
        );
    }
}

fn carrier_port_of(sipp: &Sipp) -> u16 {
    sipp.local_port()
}

#[test]
fn tongdai_up_demo_plan_reaches_the_hunt_group_and_the_echoing_test_carrier() {
    let node = node();
    // The toll-free demo number rings the first three extensions (2000-2002 here).
    let callee = phone(&node, 2001, "call_uas.xml");
    place_call(&node, 2005, "18001000", 1, 30);
    assert_eq!(callee.wait(Duration::from_secs(30)).successful, 1);
    // Any outside number goes to the built-in test carrier, which answers and echoes.
    place_call(&node, 2005, "0912345678", 2, 30);
    let cdr = newest_cdr(&node, "e2e", 2);
    assert_eq!(cdr["direction"], "outbound", "{cdr}");
    assert_eq!(cdr["destination"], "external:0912345678", "{cdr}");
    // The carrier sent our audio back: the callee side carried packets too.
    let echoed = cdr["quality"]["callee"]["packets"].as_u64().unwrap_or(0);
    assert!(echoed >= 50, "{cdr}");
}

#[test]
fn a_call_silent_on_both_sides_is_hung_up_after_the_rtp_timeout() {
    let node = node_with("[media]\nrtp_timeout_secs = 2\n");
    let port = tongdai_tests::calls::free_udp_port();
    register(&node, 2001, "e2e", port);
    // Neither phone sends audio: the callee's SDP points at a socket that stays quiet.
    let quiet = tongdai_tests::calls::free_udp_port();
    let callee = Sipp::new("call_uas_media.xml")
        .port(port)
        .key("rtp_port", quiet)
        .timeout(Duration::from_secs(30))
        .spawn();
    let run = Sipp::new("call_uac_silent.xml")
        .target(node.sip)
        .users(caller(2000, "2001"))
        .timeout(Duration::from_secs(30))
        .run();
    assert_eq!(
        run.successful,
        1,
        "caller: {run:?}\nnode:\n{}",
        node.stderr()
    );
    assert_eq!(callee.wait(Duration::from_secs(30)).successful, 1);
    let cdr = newest_cdr(&node, "e2e", 1);
    assert_eq!(cdr["hangup_by"], "system", "{cdr}");
    assert_eq!(cdr["hangup_reason"], "rtp_timeout", "{cdr}");
}

#[test]
fn an_invite_out_of_hops_gets_483() {
    let node = node();
    let run = Sipp::new("call_uac_refused_early.xml")
        .target(node.sip)
        .run();
    assert_eq!(run.successful, 1, "{run:?}\nnode:\n{}", node.stderr());
    assert!(run.logs.contains("got 483"), "{}", run.logs);
}

#[test]
fn a_redirect_from_the_callee_is_followed() {
    let node = node();
    let second = Sipp::new("call_uas.xml")
        .file("callee.ulaw", ulaw_tone(1000.0, 5.0))
        .timeout(Duration::from_secs(30));
    let second_port = second.local_port();
    let second = second.spawn();
    let port = tongdai_tests::calls::free_udp_port();
    register(&node, 2001, "e2e", port);
    let first = Sipp::new("call_uas_redirect.xml")
        .port(port)
        .key("redirect_port", second_port)
        .timeout(Duration::from_secs(30))
        .spawn();
    place_call(&node, 2000, "2001", 1, 30);
    assert_eq!(first.wait(Duration::from_secs(30)).successful, 1);
    assert_eq!(second.wait(Duration::from_secs(30)).successful, 1);
    let cdr = newest_cdr(&node, "e2e", 1);
    let targets: Vec<&str> = cdr["legs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        ["extension:2001", "redirect:extension:2001"],
        "{cdr}"
    );
}

#[test]
fn recording_on_demand_through_the_admin_api() {
    let node = node();
    let callee = phone(&node, 2001, "call_uas.xml");
    let caller = call_in_background(&node, 2000, "2001", Some("ondemand-%u@test"), 4);
    let (code, body) = node.api(
        "POST",
        "/v1/tenants/e2e/calls/ondemand-1@test/recording",
        Some("{\"action\":\"start\"}"),
    );
    assert_eq!(code, 202, "{body}");
    let run = caller.join().unwrap();
    assert_eq!(
        run.successful,
        1,
        "caller: {run:?}\nnode:\n{}",
        node.stderr()
    );
    assert_eq!(callee.wait(Duration::from_secs(30)).successful, 1);
    let cdr = newest_cdr(&node, "e2e", 1);
    assert_eq!(cdr["call_id"], "ondemand-1@test", "{cdr}");
    let id = cdr["recording_id"]
        .as_str()
        .expect("recorded on demand")
        .to_owned();
    // The recording is listed and downloadable through the API too.
    assert!(
        wait_until(Duration::from_secs(15), || {
            node.api("GET", &format!("/v1/tenants/e2e/recordings/{id}"), None)
                .0
                == 200
        }),
        "recording {id} not listed"
    );
    let (code, _) = node.api(
        "GET",
        &format!("/v1/tenants/e2e/recordings/{id}/audio"),
        None,
    );
    assert_eq!(code, 200);
    // A tenant that never records refuses.
    set_calls(&node, "{\"recording\":\"never\"}");
    let (code, body) = node.api(
        "POST",
        "/v1/tenants/e2e/calls/ondemand-2@test/recording",
        Some("{\"action\":\"start\"}"),
    );
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("\"field\":\"action\""), "{body}");
}

#[test]
fn sigterm_drains_new_calls_get_503_and_the_live_call_ends_normally() {
    let mut node = node();
    let callee = phone(&node, 2001, "call_uas.xml");
    let live = call_in_background(&node, 2000, "2001", None, 5);
    let pid = node.pid().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    assert!(
        wait_until(Duration::from_secs(10), || {
            tongdai_tests::http_get(node.http, "/healthz").is_some_and(|(code, _)| code == 503)
        }),
        "not draining"
    );
    let refused = Sipp::new("call_uac_refused_early.xml")
        .target(node.sip)
        .run();
    assert!(
        refused.logs.contains("got 503, retry after 5"),
        "{refused:?}"
    );
    let run = live.join().unwrap();
    assert_eq!(
        run.successful,
        1,
        "the live call was dropped: {run:?}\nnode:\n{}",
        node.stderr()
    );
    assert_eq!(callee.wait(Duration::from_secs(30)).successful, 1);
    // With its last call over, the draining node exits cleanly.
    assert_eq!(
        node.wait_exit(Duration::from_secs(20)),
        Some(0),
        "{}",
        node.stderr()
    );
}

#[test]
fn a_tenant_over_its_concurrent_call_quota_gets_503_with_retry_after() {
    let node = node();
    let (code, body) = node.api("GET", "/v1/tenants/e2e", None);
    assert_eq!(code, 200, "{body}");
    let mut tenant: serde_json::Value = serde_json::from_str(&body).unwrap();
    tenant["quotas"]["max_concurrent_calls"] = 1.into();
    let (code, body) = node.api("PUT", "/v1/tenants/e2e", Some(&tenant.to_string()));
    assert_eq!(code, 200, "{body}");
    let callee = phone(&node, 2001, "call_uas.xml");
    let first = call_in_background(&node, 2000, "2001", None, 4);
    // A second call of the tenant (to the demo test carrier) is over the quota.
    let second = Sipp::new("call_uac_refused.xml")
        .target(node.sip)
        .users(caller(2002, "0912345678"))
        .run();
    assert!(
        second
            .logs
            .contains("refused 503 Tenant call quota reached"),
        "{}",
        second.logs
    );
    assert!(second.logs.contains("retry after 5"), "{}", second.logs);
    assert_eq!(first.join().unwrap().successful, 1);
    assert_eq!(callee.wait(Duration::from_secs(30)).successful, 1);
    assert_eq!(
        node.metric("tongdai_calls_rejected_total{tenant=\"e2e\",reason=\"quota\"}"),
        Some(1.0)
    );
}

/// Starts a call from `from` to `dialled` lasting `secs` (SIPp in a thread) and waits until
/// the node counts it as active.
fn call_in_background(
    node: &Node,
    from: u32,
    dialled: &'static str,
    call_ids: Option<&'static str>,
    secs: u64,
) -> std::thread::JoinHandle<tongdai_tests::SippRun> {
    let sip = node.sip;
    let call = std::thread::spawn(move || {
        let mut sipp = Sipp::new("call_uac.xml")
            .target(sip)
            .users(caller(from, dialled))
            .duration(Duration::from_secs(secs))
            .file("caller.ulaw", ulaw_tone(440.0, 10.0))
            .timeout(Duration::from_secs(30));
        if let Some(format) = call_ids {
            sipp = sipp.call_ids(format);
        }
        sipp.run()
    });
    assert!(
        wait_until(Duration::from_secs(20), || {
            node.metric("tongdai_calls_active{tenant=\"e2e\"}")
                .unwrap_or(0.0)
                >= 1.0
        }),
        "the call never started:\n{}",
        node.stderr()
    );
    call
}

/// A call from extension `from` to `dialled` that streams a 440 Hz tone for `secs` and
/// hangs up within `timeout_secs`; fails the test (with the node's log) unless it
/// completes.
fn place_call(
    node: &Node,
    from: u32,
    dialled: &str,
    secs: u64,
    timeout_secs: u64,
) -> tongdai_tests::SippRun {
    let run = Sipp::new("call_uac.xml")
        .target(node.sip)
        .users(caller(from, dialled))
        .duration(Duration::from_secs(secs))
        .file("caller.ulaw", ulaw_tone(440.0, 5.0))
        .timeout(Duration::from_secs(timeout_secs))
        .run();
    assert_eq!(
        run.successful,
        1,
        "call {from} -> {dialled}: {run:?}\nnode:\n{}",
        node.stderr()
    );
    run
}
