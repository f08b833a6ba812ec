//! Reading real descriptions: what each accessor sees, static payload types, leniencies,
//! and the round trip to canonical text.

use super::*;

#[test]
fn realistic_offers_round_trip_exactly() {
    for text in [SIPP_OFFER, LINPHONE_OFFER, IPV6_ANSWER, WEBRTC_OFFER] {
        let wire = crlf(text);
        let sdp = parse(&wire);
        assert_eq!(sdp.to_string(), wire);
        // LF input gives the same structure and canonical CRLF output.
        let from_lf = parse(text);
        assert_eq!(from_lf, sdp);
        assert_eq!(from_lf.to_string(), wire);
        assert_eq!(wire.parse::<SessionDescription>().as_ref(), Ok(&sdp));
    }
}

#[test]
fn reads_a_sipp_offer() {
    let sdp = parse(&crlf(SIPP_OFFER));
    let o = sdp.origin();
    assert_eq!(o.username(), "user1");
    assert_eq!(o.session_id(), 53_655_765);
    assert_eq!(o.session_version(), 2_353_687_637);
    assert_eq!(o.address_type(), AddressType::Ip4);
    assert_eq!(o.ip(), Some(ip("192.0.2.10")));
    assert_eq!(sdp.session_name(), "-");
    assert_eq!(sdp.other_lines().collect::<Vec<_>>(), [('t', "0 0")]);
    let m = &sdp.media()[0];
    assert_eq!(sdp.media().len(), 1);
    assert_eq!(m.kind(), &MediaKind::Audio);
    assert_eq!(
        (m.port(), m.port_count(), m.proto()),
        (6000, None, "RTP/AVP")
    );
    assert!(m.is_rtp());
    assert_eq!(m.formats(), ["0", "8", "101"]);
    assert_eq!(m.payload_types().collect::<Vec<_>>(), [0, 8, 101]);
    let pcmu = RtpMap {
        encoding: "PCMU",
        clock_rate: 8000,
        channels: None,
    };
    assert_eq!(m.rtpmap(0), Some(pcmu));
    assert_eq!(
        m.rtpmap(101).map(|r| r.to_string()).as_deref(),
        Some("telephone-event/8000")
    );
    assert_eq!(m.rtpmap(96), None);
    assert_eq!(m.fmtp(101), Some("0-16"));
    assert_eq!(m.fmtp(0), None);
    assert_eq!(m.telephone_event_pt(), Some(101));
    assert_eq!(m.ptime(), Some(20));
    assert_eq!(m.direction(), Some(Direction::SendRecv));
    assert!(!m.rtcp_mux());
    assert_eq!(m.rtcp(), None);
    assert!(!m.is_disabled());
    assert_eq!(m.connection(), None);
    let c = sdp.effective_connection(m).expect("session c=");
    assert_eq!(
        (c.address(), c.ttl(), c.address_count()),
        (ip("192.0.2.10"), None, None)
    );
}

#[test]
fn reads_a_linphone_offer() {
    let sdp = parse(&crlf(LINPHONE_OFFER));
    let audio = &sdp.media()[0];
    // The 8 kHz telephone-event, not the first one listed.
    assert_eq!(audio.telephone_event_pt(), Some(100));
    assert_eq!(
        audio.rtpmap(96),
        Some(RtpMap {
            encoding: "opus",
            clock_rate: 48000,
            channels: Some(2)
        })
    );
    assert_eq!(audio.rtpmap(18).map(|r| r.encoding), Some("G729"));
    assert_eq!(audio.fmtp(18), Some("annexb=no"));
    assert_eq!(
        audio.rtcp(),
        Some(Rtcp {
            port: 7079,
            address: None
        })
    );
    assert_eq!(audio.other_lines().collect::<Vec<_>>(), [('b', "AS:80")]);
    assert_eq!(
        sdp.attribute("rtcp-xr").and_then(Attribute::value),
        Some("rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics")
    );
    let video = &sdp.media()[1];
    assert_eq!(video.kind(), &MediaKind::Video);
    assert!(video.is_disabled());
    assert_eq!(video.telephone_event_pt(), None);
}

#[test]
fn reads_an_ipv6_answer() {
    let sdp = parse(&crlf(IPV6_ANSWER));
    assert_eq!(sdp.origin().address_type(), AddressType::Ip6);
    let m = &sdp.media()[0];
    let c = sdp.effective_connection(m).expect("c=");
    assert_eq!(c.address(), ip("2001:db8::7"));
    assert_eq!(c.address_type(), AddressType::Ip6);
    assert_eq!(
        m.rtcp(),
        Some(Rtcp {
            port: 40001,
            address: Some(ip("2001:db8::7"))
        })
    );
    assert_eq!(
        m.rtpmap(9).map(|r| (r.encoding, r.clock_rate)),
        Some(("G722", 8000))
    );
    assert_eq!(sdp.effective_direction(m), Direction::RecvOnly);
}

#[test]
fn reads_a_webrtc_offer() {
    let sdp = parse(&crlf(WEBRTC_OFFER));
    assert_eq!(sdp.connection(), None);
    let m = &sdp.media()[0];
    assert_eq!(m.proto(), "UDP/TLS/RTP/SAVPF");
    assert!(m.is_rtp());
    assert!(m.rtcp_mux());
    assert_eq!(m.fmtp(111), Some("minptime=10;useinbandfec=1"));
    assert_eq!(m.telephone_event_pt(), Some(126));
    assert_eq!(m.rtcp().and_then(|r| r.address), Some(ip("0.0.0.0")));
    assert_eq!(
        sdp.effective_connection(m).map(Connection::address),
        Some(ip("0.0.0.0"))
    );
    assert_eq!(
        sdp.attribute("msid-semantic").and_then(Attribute::value),
        Some(" WMS stream1")
    );
    assert_eq!(
        m.attributes()
            .iter()
            .filter(|a| a.name() == "candidate")
            .count(),
        2
    );
}

#[test]
fn static_payload_types_need_no_rtpmap_and_rtpmap_wins() {
    let sdp = parse(
        "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n\
         m=audio 4000 RTP/AVP 0 8 9 13 18 3 10\na=rtpmap:3 X-GSM/16000\n\
         m=image 4002 udptl t38\n",
    );
    let m = &sdp.media()[0];
    let names: Vec<_> = m
        .payload_types()
        .map(|pt| m.rtpmap(pt).map(|r| r.to_string()).unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        [
            "PCMU/8000",
            "PCMA/8000",
            "G722/8000",
            "CN/8000",
            "G729/8000",
            "X-GSM/16000",
            "L16/44100/2"
        ]
    );
    let t38 = &sdp.media()[1];
    assert!(!t38.is_rtp());
    assert_eq!(t38.formats(), ["t38"]);
    assert_eq!(t38.payload_types().count(), 0);
    assert_eq!(t38.rtpmap(0), None);
}

#[test]
fn trailing_blank_lines_and_mixed_endings_are_accepted() {
    let text = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\ns=-\r\nc=IN IP4 192.0.2.1\nt=0 0\r\n\r\n\n";
    let sdp = parse(text);
    assert_eq!(
        sdp.to_string(),
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
    );
    // No final line ending at all.
    assert_eq!(parse(text.trim_end()), sdp);
}

#[test]
fn optional_lines_out_of_order_are_written_in_rfc_order() {
    let text = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=x\nt=0 0\nr=7d 1h 0 25h\nk=prompt\nb=CT:128\n\
                c=IN IP4 192.0.2.1\ni=info\ne=ops@example.com\nz=2882844526 -1h\na=tool:x\nu=http://example.com\n\
                m=audio 4000 RTP/AVP 0\na=sendonly\nb=AS:64\nc=IN IP4 192.0.2.2\ni=voice\n";
    let sdp = parse(text);
    let canonical = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=x\r\ni=info\r\nu=http://example.com\r\n\
                     e=ops@example.com\r\nc=IN IP4 192.0.2.1\r\nb=CT:128\r\nt=0 0\r\nr=7d 1h 0 25h\r\n\
                     z=2882844526 -1h\r\nk=prompt\r\na=tool:x\r\nm=audio 4000 RTP/AVP 0\r\ni=voice\r\n\
                     c=IN IP4 192.0.2.2\r\nb=AS:64\r\na=sendonly\r\n";
    assert_eq!(sdp.to_string(), canonical);
    assert_eq!(parse(canonical), sdp);
}

#[test]
fn multicast_suffixes_are_kept() {
    let sdp = parse(
        "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 233.252.0.1/127/3\nt=0 0\n\
         m=audio 4000 RTP/AVP 0\nc=IN IP6 ff15::101/2\nm=audio 4002 RTP/AVP 0\nc=IN IP4 233.252.0.9/16\n",
    );
    let c = sdp.connection().expect("c=");
    assert_eq!(
        (c.address(), c.ttl(), c.address_count()),
        (ip("233.252.0.1"), Some(127), Some(3))
    );
    let c6 = sdp.media()[0].connection().expect("c=");
    assert_eq!((c6.ttl(), c6.address_count()), (None, Some(2)));
    assert_eq!(
        sdp.media()[1].connection().and_then(Connection::ttl),
        Some(16)
    );
    assert_eq!(parse(&sdp.to_string()), sdp);
    assert!(sdp.to_string().contains("c=IN IP4 233.252.0.1/127/3\r\n"));
}

#[test]
fn origin_may_name_a_host() {
    let sdp = parse("v=0\no=- 1 1 IN IP4 pbx.example.com\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n");
    assert_eq!(sdp.origin().address(), "pbx.example.com");
    assert_eq!(sdp.origin().ip(), None);
}

#[test]
fn numeric_formats_of_other_protos_are_not_payload_types() {
    let mut sdp = parse(&format!(
        "{BASE}m=application 9 UDP/DTLS/SCTP 5000\na=fmtp:5000 protocol=webrtc-datachannel\n"
    ));
    let m = &mut sdp.media_mut()[0];
    assert!(!m.is_rtp());
    assert_eq!(m.payload_types().count(), 0);
    assert_eq!(m.rtpmap(0), None);
    assert_eq!(m.retain_formats(|_, _| false), 1);
    assert_eq!(m.formats(), ["5000"]);
    assert!(m.attribute("fmtp").is_some());
}

#[test]
fn direction_media_overrides_session_and_defaults_to_sendrecv() {
    let sdp = parse(
        "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\na=sendonly\n\
         m=audio 4000 RTP/AVP 0\nm=audio 4002 RTP/AVP 0\na=inactive\n",
    );
    assert_eq!(sdp.direction(), Some(Direction::SendOnly));
    assert_eq!(
        sdp.effective_direction(&sdp.media()[0]),
        Direction::SendOnly
    );
    assert_eq!(
        sdp.effective_direction(&sdp.media()[1]),
        Direction::Inactive
    );
    let plain = parse(&crlf(SIPP_OFFER).replace("a=sendrecv\r\n", ""));
    assert_eq!(plain.media()[0].direction(), None);
    assert_eq!(
        plain.effective_direction(&plain.media()[0]),
        Direction::SendRecv
    );
}

#[test]
fn media_connection_overrides_session_connection() {
    let sdp = parse(
        "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n\
         m=audio 4000 RTP/AVP 0\nm=video 4002 RTP/AVP 31\nc=IN IP6 2001:db8::2\n",
    );
    let addrs: Vec<_> = sdp
        .media()
        .iter()
        .map(|m| sdp.effective_connection(m).map(Connection::address))
        .collect();
    assert_eq!(addrs, [Some(ip("192.0.2.1")), Some(ip("2001:db8::2"))]);
}
