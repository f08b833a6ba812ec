//! Rewriting: anchoring media on the relay, ICE removal, setters, codec policy
//! (`retain_formats`) and descriptions of our own.

use super::*;

#[test]
fn anchors_a_sipp_offer_with_rtcp_on_its_own_port() {
    let mut sdp = parse(&crlf(SIPP_OFFER));
    let relay = ip("203.0.113.5");
    sdp.origin_mut().set_username("tongdai").expect("username");
    sdp.origin_mut().set_address(relay);
    sdp.bump_version();
    sdp.anchor(0, relay, 30000, RtcpPlacement::Port(30001))
        .expect("anchor");
    let expected = "v=0
o=tongdai 53655765 2353687638 IN IP4 203.0.113.5
s=-
c=IN IP4 203.0.113.5
t=0 0
m=audio 30000 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv
a=rtcp:30001
";
    assert_eq!(sdp.to_string(), crlf(expected));
    // Anchoring again (re-INVITE through the same relay port) changes nothing.
    let again = sdp.clone();
    sdp.anchor(0, relay, 30000, RtcpPlacement::Port(30001))
        .expect("anchor");
    assert_eq!(sdp, again);
}

#[test]
fn anchors_a_webrtc_offer_on_ipv6_with_rtcp_mux() {
    let mut sdp = parse(&crlf(WEBRTC_OFFER));
    sdp.anchor(0, ip("2001:db8::1"), 30000, RtcpPlacement::Mux)
        .expect("anchor");
    let expected = "v=0
o=- 4611731400430051336 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
a=extmap-allow-mixed
a=msid-semantic: WMS stream1
m=audio 30000 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
c=IN IP6 2001:db8::1
a=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:4D:35:7C:1B:8A:3E:2F:B8:CA:6E:CF:D2
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=sendrecv
a=msid:stream1 track1
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
a=ssrc:1001 cname:4TOk42mSjXCkVIa6
";
    assert_eq!(sdp.to_string(), crlf(expected));
}

#[test]
fn anchoring_switches_between_mux_and_rtcp_port() {
    let mut sdp = parse(&crlf(LINPHONE_OFFER));
    let relay = ip("203.0.113.5");
    sdp.anchor(0, relay, 31000, RtcpPlacement::Mux)
        .expect("anchor");
    let m = &sdp.media()[0];
    assert_eq!((m.rtcp(), m.rtcp_mux()), (None, true));
    assert_eq!(m.attributes().last().map(Attribute::name), Some("rtcp-mux"));

    sdp.media_mut()[0]
        .push_attribute("rtcp-mux-only", None)
        .expect("flag");
    sdp.anchor(0, relay, 31000, RtcpPlacement::Port(31001))
        .expect("anchor");
    let m = &sdp.media()[0];
    assert_eq!(
        m.rtcp(),
        Some(Rtcp {
            port: 31001,
            address: None
        })
    );
    assert!(!m.rtcp_mux());
    assert_eq!(m.attribute("rtcp-mux-only"), None);
}

#[test]
fn anchoring_one_section_never_redirects_another() {
    let mut sdp = parse(&format!(
        "{BASE}m=audio 4000 RTP/AVP 0\nm=video 4002 RTP/AVP 31\nm=video 0 RTP/AVP 31\n\
         m=text 4004 RTP/AVP 98\nc=IN IP4 192.0.2.9\n"
    ));
    let relay = ip("203.0.113.5");
    sdp.anchor(0, relay, 30000, RtcpPlacement::Mux)
        .expect("anchor");
    let addr = |sdp: &SessionDescription, i: usize| {
        sdp.effective_connection(&sdp.media()[i])
            .map(Connection::address)
    };
    assert_eq!(addr(&sdp, 0), Some(relay));
    // The other active video keeps the far end; the disabled one does not need it.
    assert_eq!(addr(&sdp, 1), Some(ip("192.0.2.1")));
    assert_eq!(
        sdp.media()[1].connection().map(Connection::address),
        Some(ip("192.0.2.1"))
    );
    assert_eq!(sdp.media()[2].connection(), None);
    assert_eq!(addr(&sdp, 3), Some(ip("192.0.2.9")));
    // A section with its own c= is rewritten there, the session c= stays ours.
    sdp.anchor(3, relay, 30002, RtcpPlacement::Mux)
        .expect("anchor");
    assert_eq!(
        sdp.media()[3].connection().map(Connection::address),
        Some(relay)
    );
    sdp.anchor(1, relay, 30004, RtcpPlacement::Mux)
        .expect("anchor");
    assert!(
        sdp.media()
            .iter()
            .all(|m| sdp.effective_connection(m).map(Connection::address) == Some(relay))
    );
    assert!(
        !sdp.to_string().contains("192.0.2.1\r\nt="),
        "no far-end session address left"
    );
    assert_eq!(
        sdp.anchor(4, relay, 1, RtcpPlacement::Mux),
        Err(SdpError::NoSuchMedia { index: 4, count: 4 })
    );
}

#[test]
fn anchoring_removes_session_level_ice() {
    let mut sdp = parse(&format!(
        "{BASE}a=ice-lite\na=ice-ufrag:abcd\na=ice-pwd:0123456789abcdefghijkl\na=tool:x\n\
         m=audio 4000 RTP/AVP 0\na=candidate:1 1 UDP 2130706431 192.0.2.1 4000 typ host\n"
    ));
    sdp.anchor(0, ip("203.0.113.5"), 30000, RtcpPlacement::Mux)
        .expect("anchor");
    let names: Vec<_> = sdp.attributes().iter().map(Attribute::name).collect();
    assert_eq!(names, ["tool"]);
    assert_eq!(sdp.media()[0].attribute("candidate"), None);
}

#[test]
fn removes_every_ice_attribute() {
    let mut sdp = parse(&crlf(WEBRTC_OFFER));
    sdp.push_attribute("ice-options", Some("trickle"))
        .expect("attr");
    sdp.media_mut()[0]
        .push_attribute("remote-candidates", Some("1 192.0.2.3 45664"))
        .expect("attr");
    assert_eq!(sdp.remove_ice(), 8);
    assert_eq!(sdp.remove_ice(), 0);
    let text = sdp.to_string();
    for name in ICE_ATTRIBUTES {
        assert!(
            !text.contains(&format!("a={name}")),
            "{name} left in {text}"
        );
    }
    assert!(text.contains("a=fingerprint:"));
}

#[test]
fn sets_ports_addresses_and_directions() {
    let mut sdp = parse(&crlf(SIPP_OFFER).replace("m=audio 6000 ", "m=audio 6000/2 "));
    assert_eq!(sdp.media()[0].port_count(), Some(2));
    let m = &mut sdp.media_mut()[0];
    m.set_port(7000);
    assert_eq!((m.port(), m.port_count()), (7000, None));
    m.set_connection_address(ip("2001:db8::5"));
    m.set_direction(Direction::SendOnly);
    assert_eq!(m.direction(), Some(Direction::SendOnly));
    assert_eq!(
        m.attributes().last().map(Attribute::name),
        Some("sendonly"),
        "replaced in place"
    );
    m.set_rtcp(Some(Rtcp {
        port: 7001,
        address: Some(ip("2001:db8::5")),
    }));
    sdp.set_connection_address(ip("::ffff:198.51.100.1"));
    sdp.set_direction(Direction::Inactive);
    let text = sdp.to_string();
    assert!(text.contains("\r\nc=IN IP4 198.51.100.1\r\n"), "{text}");
    assert!(
        text.contains("m=audio 7000 RTP/AVP 0 8 101\r\nc=IN IP6 2001:db8::5\r\n"),
        "{text}"
    );
    assert!(
        text.contains("a=sendonly\r\na=rtcp:7001 IN IP6 2001:db8::5\r\n"),
        "{text}"
    );
    assert!(text.contains("t=0 0\r\na=inactive\r\nm="), "{text}");
    let again = parse(&text);
    assert_eq!(again, sdp);
    assert_eq!(
        again.effective_direction(&again.media()[0]),
        Direction::SendOnly
    );

    sdp.media_mut()[0].set_rtcp(None);
    sdp.media_mut()[0].disable();
    assert!(sdp.media()[0].is_disabled());
    assert_eq!(sdp.media()[0].rtcp(), None);
    assert!(sdp.to_string().contains("m=audio 0 RTP/AVP"));
}

#[test]
fn direction_setter_replaces_every_direction_attribute() {
    let mut m = MediaDescription::new(MediaKind::Audio, 4000, "RTP/AVP", &["0"]).expect("media");
    m.push_attribute("recvonly", None).expect("attr");
    m.push_attribute("ptime", Some("20")).expect("attr");
    m.push_attribute("inactive", None).expect("attr");
    m.set_direction(Direction::SendRecv);
    let names: Vec<_> = m.attributes().iter().map(Attribute::name).collect();
    assert_eq!(names, ["sendrecv", "ptime"]);
}

#[test]
fn origin_setters_and_version_bump() {
    let mut sdp = parse(&crlf(IPV6_ANSWER));
    let o = sdp.origin_mut();
    o.set_session_id(42);
    o.set_session_version(u64::MAX - 1);
    o.set_address(ip("192.0.2.77"));
    assert_eq!(o.set_username("two words").map_err(|e| e.to_string()), Err(
        "o= username: expected a non-empty string without whitespace (`-` for none), got \"two words\"".into()
    ));
    assert!(o.set_username("").is_err());
    sdp.bump_version();
    assert_eq!(sdp.origin().session_version(), u64::MAX);
    sdp.bump_version();
    assert_eq!(sdp.origin().session_version(), u64::MAX, "saturates");
    assert!(
        sdp.to_string()
            .contains(&format!("o=- 42 {} IN IP4 192.0.2.77\r\n", u64::MAX))
    );
    sdp.origin_mut().set_address(ip("2001:db8::9"));
    assert_eq!(
        sdp.origin().to_string(),
        format!("- 42 {} IN IP6 2001:db8::9", u64::MAX)
    );
}

#[test]
fn retain_formats_applies_codec_policy() {
    let mut sdp = parse(&crlf(WEBRTC_OFFER));
    let m = &mut sdp.media_mut()[0];
    // Tenant policy: G.711 and 8 kHz DTMF only.
    let remaining = m.retain_formats(|_, map| {
        map.is_some_and(|r| {
            ["PCMU", "PCMA"].contains(&r.encoding)
                || (r.encoding.eq_ignore_ascii_case("telephone-event") && r.clock_rate == 8000)
        })
    });
    assert_eq!(remaining, 3);
    assert_eq!(m.formats(), ["0", "8", "126"]);
    let text = sdp.to_string();
    for gone in [
        "a=rtpmap:111",
        "a=fmtp:111",
        "a=rtcp-fb:111",
        "a=rtpmap:63",
        "a=fmtp:63",
        "a=rtpmap:110",
    ] {
        assert!(!text.contains(gone), "{gone} left");
    }
    assert!(text.contains("m=audio 9 UDP/TLS/RTP/SAVPF 0 8 126\r\n"));
    assert!(text.contains("a=rtpmap:126 telephone-event/8000\r\n"));
    assert_eq!(parse(&text), sdp);
}

#[test]
fn retain_formats_sees_static_payload_types_and_keeps_wildcards() {
    let mut sdp = parse(&crlf(LINPHONE_OFFER));
    let m = &mut sdp.media_mut()[0];
    let mut seen = Vec::new();
    let remaining = m.retain_formats(|pt, map| {
        seen.push((pt, map.map(|r| r.encoding.to_owned())));
        pt < 96
    });
    assert_eq!(
        seen,
        [
            (96, Some("opus".into())),
            (97, Some("speex".into())),
            (0, Some("PCMU".into())),
            (8, Some("PCMA".into())),
            (18, Some("G729".into())),
            (101, Some("telephone-event".into())),
            (100, Some("telephone-event".into())),
        ]
    );
    assert_eq!(remaining, 3);
    assert_eq!(m.fmtp(18), Some("annexb=no"));
    assert_eq!(m.telephone_event_pt(), None);
    let fb: Vec<_> = m
        .attributes()
        .iter()
        .filter(|a| a.name() == "rtcp-fb")
        .filter_map(Attribute::value)
        .collect();
    assert_eq!(fb, ["* trr-int 1000"]);
    // Keeping everything touches nothing.
    let before = m.clone();
    assert_eq!(m.retain_formats(|_, _| true), 3);
    assert_eq!(*m, before);
}

#[test]
fn retain_formats_with_nothing_left_disables_the_section() {
    let mut sdp = parse(&crlf(LINPHONE_OFFER));
    let m = &mut sdp.media_mut()[0];
    assert_eq!(
        m.retain_formats(|_, map| map.is_some_and(|r| r.encoding == "AMR")),
        0
    );
    assert!(m.is_disabled());
    assert_eq!(
        m.formats(),
        ["96"],
        "a rejected stream still lists one format"
    );
    assert_eq!(m.attribute("rtpmap"), None);
    assert_eq!(m.attribute("fmtp"), None);
    let text = sdp.to_string();
    assert!(
        text.contains(
            "m=audio 0 RTP/AVP 96\r\nb=AS:80\r\na=rtcp:7079\r\na=rtcp-fb:* trr-int 1000\r\nm=video"
        ),
        "{text}"
    );
    assert_eq!(parse(&text), sdp);
}

#[test]
fn retain_formats_keeps_non_rtp_formats() {
    let mut m = MediaDescription::new(MediaKind::Image, 4002, "udptl", &["t38"]).expect("media");
    assert_eq!(m.retain_formats(|_, _| false), 1);
    assert_eq!(m.formats(), ["t38"]);
    assert!(!m.is_disabled());
}

#[test]
fn builds_a_description_of_our_own() {
    let relay = ip("203.0.113.5");
    let origin = Origin::new("tongdai", 7, 1, relay).expect("origin");
    let mut sdp = SessionDescription::new(origin, relay);
    let mut audio = MediaDescription::new(MediaKind::Audio, 30000, "RTP/AVP", &["0", "8", "101"])
        .expect("media");
    audio
        .push_attribute("rtpmap", Some("101 telephone-event/8000"))
        .expect("rtpmap");
    audio
        .push_attribute("fmtp", Some("101 0-15"))
        .expect("fmtp");
    audio.push_attribute("ptime", Some("20")).expect("ptime");
    audio.set_direction(Direction::SendOnly);
    audio.set_rtcp_mux(true);
    audio.set_rtcp_mux(true);
    sdp.push_media(audio).expect("media");
    sdp.set_session_name("tongdai").expect("name");
    let expected = "v=0
o=tongdai 7 1 IN IP4 203.0.113.5
s=tongdai
c=IN IP4 203.0.113.5
t=0 0
m=audio 30000 RTP/AVP 0 8 101
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
a=sendonly
a=rtcp-mux
";
    assert_eq!(sdp.to_string(), crlf(expected));
    assert_eq!(parse(expected), sdp);
    for _ in 1..MAX_MEDIA {
        let m = MediaDescription::new(MediaKind::Audio, 0, "RTP/AVP", &["0"]).expect("media");
        sdp.push_media(m).expect("below the limit");
    }
    let m = MediaDescription::new(MediaKind::Audio, 0, "RTP/AVP", &["0"]).expect("media");
    assert!(sdp.push_media(m).is_err());
}

#[test]
fn constructors_and_setters_refuse_what_cannot_be_written() {
    let relay = ip("203.0.113.5");
    assert!(Origin::new("a b", 1, 1, relay).is_err());
    assert_eq!(
        MediaDescription::new(MediaKind::Audio, 1, "RTP/AVP", &["300"]),
        Err(SdpError::InvalidValue {
            field: "m= format",
            expected: "an RTP payload type 0-127",
            found: "300".into()
        })
    );
    assert!(MediaDescription::new(MediaKind::Audio, 1, "RTP/AVP", &[]).is_err());
    assert!(MediaDescription::new(MediaKind::Other("a b".into()), 1, "RTP/AVP", &["0"]).is_err());
    assert!(MediaDescription::new(MediaKind::Audio, 1, "RTP/AVP\r\n", &["0"]).is_err());
    assert_eq!(
        MediaDescription::new(MediaKind::Audio, 1, "RTP/AVP", &["0 8"]),
        Err(SdpError::InvalidValue {
            field: "m= line",
            expected: "media, proto and formats without spaces or line breaks",
            found: "0 8".into()
        })
    );
    let mut m = MediaDescription::new(MediaKind::Audio, 1, "RTP/AVP", &["0"]).expect("media");
    assert_eq!(
        m.push_attribute("rtpmap", Some("96 opus")),
        Err(SdpError::InvalidValue {
            field: "a=rtpmap clock rate",
            expected: "`/<clock rate in Hz>` after the encoding",
            found: "opus".into()
        })
    );
    assert!(m.push_attribute("x", Some("a\r\nm=audio")).is_err());
    assert_eq!(
        m.push_attribute("rtcp", Some("4001 IN IP4 media.example.com")),
        Err(SdpError::InvalidValue {
            field: "a=rtcp address",
            expected: "an IP address, not a hostname",
            found: "media.example.com".into()
        })
    );
    assert!(m.push_attribute("bad name", None).is_err());
    assert!(m.push_attribute("ptime", None).is_err());
    assert_eq!(m.attributes().len(), 0);
    let mut sdp = SessionDescription::new(Origin::new("-", 1, 1, relay).expect("origin"), relay);
    assert!(sdp.set_session_name("").is_err());
    assert!(sdp.set_session_name("a\nb").is_err());
    assert!(sdp.push_attribute("tool", Some("tongdai")).is_ok());
    assert_eq!(sdp.remove_attributes("tool"), 1);
}

#[test]
fn connection_from_a_mapped_address_is_ipv4() {
    let c = Connection::new(ip("::ffff:192.0.2.1"));
    assert_eq!(c.to_string(), "IN IP4 192.0.2.1");
    assert_eq!(
        Connection::new(ip("2001:db8::1")).to_string(),
        "IN IP6 2001:db8::1"
    );
}
