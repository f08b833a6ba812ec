//! Errors: each structural and field error names its line and what was expected there;
//! size and media-count limits.

use super::*;
use crate::media::sdp::parse::RTPMAP_FORM;

fn field(line: usize, field: &'static str, expected: &'static str, found: &str) -> SdpError {
    SdpError::Field {
        line,
        field,
        expected,
        found: found.to_owned(),
    }
}

#[test]
fn each_structural_error_names_its_line() {
    let no_c = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\n";
    let cases: Vec<(String, SdpError)> = vec![
        (String::new(), SdpError::Empty),
        ("\r\n\r\n".into(), SdpError::Empty),
        (
            "o=- 1 1 IN IP4 192.0.2.1\nv=0\n".into(),
            SdpError::VersionNotFirst {
                found: "o=- 1 1 IN IP4 192.0.2.1".into(),
            },
        ),
        (
            "v=1\n".into(),
            SdpError::UnsupportedVersion {
                line: 1,
                version: "1".into(),
            },
        ),
        (
            format!("{BASE}x=1\n"),
            SdpError::UnknownType { line: 6, kind: 'x' },
        ),
        (
            format!("{BASE}A=1\n"),
            SdpError::UnknownType { line: 6, kind: 'A' },
        ),
        (
            format!("{BASE}m=audio 4000 RTP/AVP 0\nq=1\n"),
            SdpError::UnknownType { line: 7, kind: 'q' },
        ),
        (
            format!("{BASE}a sendrecv\n"),
            SdpError::NotTypeValue {
                line: 6,
                found: "a sendrecv".into(),
            },
        ),
        (
            format!("{BASE}a =sendrecv\n"),
            SdpError::NotTypeValue {
                line: 6,
                found: "a =sendrecv".into(),
            },
        ),
        (
            "v=0\n\no=- 1 1 IN IP4 192.0.2.1\n".into(),
            SdpError::EmptyLine { line: 2 },
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\r\n".into(),
            SdpError::ControlCharacter { line: 3 },
        ),
        (
            format!("{BASE}i=a\0b\n"),
            SdpError::ControlCharacter { line: 6 },
        ),
        (
            format!("{BASE}v=0\n"),
            SdpError::Duplicate { line: 6, kind: 'v' },
        ),
        (
            format!("{BASE}o=- 1 1 IN IP4 192.0.2.1\n"),
            SdpError::Duplicate { line: 6, kind: 'o' },
        ),
        (
            format!("{BASE}s=again\n"),
            SdpError::Duplicate { line: 6, kind: 's' },
        ),
        (
            format!("{BASE}c=IN IP4 192.0.2.2\n"),
            SdpError::Duplicate { line: 6, kind: 'c' },
        ),
        (
            format!("{BASE}i=a\ni=b\n"),
            SdpError::Duplicate { line: 7, kind: 'i' },
        ),
        (
            format!("{BASE}m=audio 4000 RTP/AVP 0\nc=IN IP4 192.0.2.2\nc=IN IP4 192.0.2.3\n"),
            SdpError::Duplicate { line: 8, kind: 'c' },
        ),
        (
            format!("{BASE}m=audio 4000 RTP/AVP 0\nt=0 0\n"),
            SdpError::SessionLineInMedia { line: 7, kind: 't' },
        ),
        (
            format!("{BASE}m=audio 4000 RTP/AVP 0\no=- 1 1 IN IP4 192.0.2.1\n"),
            SdpError::SessionLineInMedia { line: 7, kind: 'o' },
        ),
        (
            "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nr=7d 1h 0 25h\nt=0 0\n".into(),
            SdpError::NotAfterTime { line: 4, kind: 'r' },
        ),
        (
            format!("{BASE}a=x\nr=7d 1h 0 25h\n"),
            SdpError::NotAfterTime { line: 7, kind: 'r' },
        ),
        (
            "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nz=2882844526 -1h\nt=0 0\n".into(),
            SdpError::NotAfterTime { line: 4, kind: 'z' },
        ),
        ("v=0\ns=-\nt=0 0\n".into(), SdpError::Missing { kind: 'o' }),
        (
            "v=0\no=- 1 1 IN IP4 192.0.2.1\nt=0 0\n".into(),
            SdpError::Missing { kind: 's' },
        ),
        (
            "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\n".into(),
            SdpError::Missing { kind: 't' },
        ),
        (
            format!("{no_c}m=audio 4000 RTP/AVP 0\nc=IN IP4 192.0.2.1\nm=audio 4002 RTP/AVP 0\n"),
            SdpError::NoConnection { line: 7, index: 1 },
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(SessionDescription::parse(&text), Err(expected), "{text:?}");
    }
}

#[test]
fn each_field_error_names_its_line_and_what_was_expected() {
    let origin = |o: &str| format!("v=0\no={o}\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n");
    let conn = |c: &str| format!("v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc={c}\nt=0 0\n");
    let media = |m: &str| format!("{BASE}m={m}\n");
    let attr = |a: &str| format!("{BASE}m=audio 4000 RTP/AVP 0 96\na={a}\n");
    let cases: Vec<(String, SdpError)> = vec![
        (
            origin("- 1 1 IN IP4"),
            field(
                2,
                "o= line",
                "`<username> <sess-id> <sess-version> IN IP4|IP6 <address>`",
                "- 1 1 IN IP4",
            ),
        ),
        (
            origin("- 1 1 IN IP4 192.0.2.1 extra"),
            field(
                2,
                "o= line",
                "`<username> <sess-id> <sess-version> IN IP4|IP6 <address>`",
                "- 1 1 IN IP4 192.0.2.1 extra",
            ),
        ),
        (
            origin(" 1 1 IN IP4 192.0.2.1"),
            field(2, "o= username", "a non-empty username (`-` for none)", ""),
        ),
        (
            origin("- abc 1 IN IP4 192.0.2.1"),
            field(2, "o= session id", "a decimal number below 2^64", "abc"),
        ),
        (
            origin("- 1 +2 IN IP4 192.0.2.1"),
            field(2, "o= session version", "a decimal number below 2^64", "+2"),
        ),
        (
            origin("- 1 99999999999999999999 IN IP4 192.0.2.1"),
            field(
                2,
                "o= session version",
                "a decimal number below 2^64",
                "99999999999999999999",
            ),
        ),
        (
            origin("- 1 1 ATM IP4 192.0.2.1"),
            field(2, "o= network type", "IN", "ATM"),
        ),
        (
            origin("- 1 1 IN IP4 ???"),
            field(2, "o= address", "an IP address or a domain name", "???"),
        ),
        (
            origin("- 1 1 IN IP4 "),
            field(2, "o= address", "an IP address or a domain name", ""),
        ),
        (
            origin("- 1 1 IN IP6 192.0.2.1"),
            field(2, "o= address", "an IPv6 address after IP6", "192.0.2.1"),
        ),
        (
            conn("IN IP4"),
            field(4, "c= line", "`IN IP4|IP6 <address>`", "IN IP4"),
        ),
        (
            conn("ATM NSAP 47.0005"),
            field(4, "c= network type", "IN", "ATM"),
        ),
        (
            conn("IN IPX 192.0.2.1"),
            field(4, "c= address type", "IP4 or IP6", "IPX"),
        ),
        (
            conn("IN IP4 pbx.example.com"),
            SdpError::Hostname {
                line: 4,
                field: "c= address",
                host: "pbx.example.com".into(),
            },
        ),
        (
            conn("IN IP4 2001:db8::1"),
            field(4, "c= address", "an IPv4 address after IP4", "2001:db8::1"),
        ),
        (
            conn("IN IP6 192.0.2.1"),
            field(4, "c= address", "an IPv6 address after IP6", "192.0.2.1"),
        ),
        (
            conn("IN IP4 192.0.2.256"),
            field(4, "c= address", "an IPv4 address after IP4", "192.0.2.256"),
        ),
        (
            conn("IN IP4 192.0.2.1/127"),
            field(
                4,
                "c= address suffix",
                "no suffix on a unicast address",
                "192.0.2.1/127",
            ),
        ),
        (
            conn("IN IP4 233.252.0.1/300"),
            field(
                4,
                "c= address suffix",
                "a multicast TTL of 0-255",
                "233.252.0.1/300",
            ),
        ),
        (
            conn("IN IP4 233.252.0.1/1/0"),
            field(
                4,
                "c= address suffix",
                "a positive number of addresses",
                "233.252.0.1/1/0",
            ),
        ),
        (
            conn("IN IP4 233.252.0.1/1/2/3"),
            field(
                4,
                "c= address suffix",
                "at most `/<ttl>/<number of addresses>`",
                "233.252.0.1/1/2/3",
            ),
        ),
        (
            conn("IN IP6 ff15::101/3/2"),
            field(
                4,
                "c= address suffix",
                "only `/<number of addresses>` (IP6 has no TTL)",
                "ff15::101/3/2",
            ),
        ),
        (
            conn("IN IP6 2001:db8::1/2"),
            field(
                4,
                "c= address suffix",
                "no suffix on a unicast address",
                "2001:db8::1/2",
            ),
        ),
        (
            "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0\n".into(),
            field(
                4,
                "t= line",
                "`<start time> <stop time>` as decimal numbers",
                "0",
            ),
        ),
        (
            media("audio"),
            field(6, "m= line", "`<media> <port> <proto> <fmt> ...`", "audio"),
        ),
        (
            media("audio 4000 RTP/AVP"),
            field(
                6,
                "m= line",
                "at least one format after the proto",
                "audio 4000 RTP/AVP",
            ),
        ),
        (
            media("audio 70000 RTP/AVP 0"),
            field(6, "m= port", "a port number 0-65535", "70000"),
        ),
        (
            media("audio 4000/0 RTP/AVP 0"),
            field(6, "m= number of ports", "a positive number", "0"),
        ),
        (
            media("audio 4000 RTP//AVP 0"),
            field(
                6,
                "m= proto",
                "tokens separated by / such as RTP/AVP",
                "RTP//AVP",
            ),
        ),
        (
            media("audio 4000 RTP/AVP 0 128"),
            field(6, "m= format", "an RTP payload type 0-127", "128"),
        ),
        (
            media("audio 4000 RTP/AVP 0 8 0"),
            field(6, "m= format", "each payload type listed once", "0"),
        ),
        (
            media("audio 4000 RTP/AVP 0  8"),
            field(6, "m= format", "an RTP payload type 0-127", ""),
        ),
        (
            media("au\"dio 4000 RTP/AVP 0"),
            field(6, "m= media", "a token such as audio or video", "au\"dio"),
        ),
        (attr("rtpmap"), field(7, "a=rtpmap", RTPMAP_FORM, "")),
        (attr("rtpmap:96"), field(7, "a=rtpmap", RTPMAP_FORM, "96")),
        (
            attr("rtpmap:200 opus/48000"),
            field(7, "a=rtpmap payload type", "a number 0-127", "200"),
        ),
        (
            attr("rtpmap:96 opus"),
            field(
                7,
                "a=rtpmap clock rate",
                "`/<clock rate in Hz>` after the encoding",
                "opus",
            ),
        ),
        (
            attr("rtpmap:96 opus/0"),
            field(
                7,
                "a=rtpmap clock rate",
                "`/<clock rate in Hz>` after the encoding",
                "opus/0",
            ),
        ),
        (
            attr("rtpmap:96 opus/48000/x"),
            field(7, "a=rtpmap channels", "a positive number of channels", "x"),
        ),
        (
            attr("rtpmap:96 opus/48000/2/1"),
            field(7, "a=rtpmap", RTPMAP_FORM, "96 opus/48000/2/1"),
        ),
        (
            attr("rtpmap:96 /48000"),
            field(7, "a=rtpmap encoding", "an encoding name such as PCMU", ""),
        ),
        (
            attr("fmtp:x-96 0-15"),
            field(7, "a=fmtp format", "an RTP payload type 0-127", "x-96"),
        ),
        (
            attr("fmtp"),
            field(7, "a=fmtp", "`<format> <parameters>`", ""),
        ),
        (
            attr("rtcp:abc"),
            field(7, "a=rtcp port", "a port number 0-65535", "abc"),
        ),
        (
            attr("rtcp:5001 IN IP4"),
            field(
                7,
                "a=rtcp",
                "`<port> [IN IP4|IP6 <address>]`",
                "5001 IN IP4",
            ),
        ),
        (
            attr("rtcp:5001 IN IP4 media.example.com"),
            SdpError::Hostname {
                line: 7,
                field: "a=rtcp address",
                host: "media.example.com".into(),
            },
        ),
        (
            attr("ptime:20.5"),
            field(7, "a=ptime", "a whole number of milliseconds", "20.5"),
        ),
        (
            attr("ptime:0"),
            field(7, "a=ptime", "a whole number of milliseconds", "0"),
        ),
        (
            attr(":sendrecv"),
            field(7, "a= attribute name", "a token", ""),
        ),
        (
            format!(
                "{BASE}m=audio 4000 RTP/AVP 96\na=rtpmap:96 opus/48000/2\na=rtpmap:96 PCMU/8000\n"
            ),
            SdpError::DuplicateRtpmap { line: 8, pt: 96 },
        ),
        (
            format!("{BASE}a=sendonly\nm=audio 4000 RTP/AVP 0\na=sendonly\na=recvonly\n"),
            SdpError::DuplicateDirection {
                line: 9,
                found: Direction::RecvOnly,
            },
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(SessionDescription::parse(&text), Err(expected), "{text:?}");
    }
}

#[test]
fn same_payload_type_may_be_mapped_in_two_sections() {
    let text = format!(
        "{BASE}m=audio 4000 RTP/AVP 96\na=rtpmap:96 opus/48000/2\na=sendonly\n\
         m=audio 4002 RTP/AVP 96\na=rtpmap:96 opus/48000/2\na=sendonly\n"
    );
    assert_eq!(parse(&text).media().len(), 2);
}

#[test]
fn error_messages_say_where_and_what() {
    let e = SessionDescription::parse(&format!(
        "{BASE}m=audio 4000 RTP/AVP 0\nc=IN IP4 pbx.example.com\n"
    ))
    .expect_err("hostname");
    assert_eq!(
        e.to_string(),
        "line 7: c= address \"pbx.example.com\" is a hostname; only IP addresses are accepted (names are never resolved)"
    );
    let e =
        SessionDescription::parse(&format!("{BASE}m=audio 4000 RTP/AVP 0 128\n")).expect_err("pt");
    assert_eq!(
        e.to_string(),
        "line 6: m= format: expected an RTP payload type 0-127, found \"128\""
    );
    let long = format!("{BASE}{}\n", "z".repeat(200));
    match SessionDescription::parse(&long) {
        Err(SdpError::NotTypeValue { line: 6, found }) => {
            assert_eq!(found.chars().count(), 65, "64 characters and an ellipsis");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn limits_size_and_media_count() {
    let mut text = String::from(BASE);
    for i in 0..MAX_MEDIA {
        text.push_str(&format!("m=audio {} RTP/AVP 0\n", 4000 + 2 * i));
    }
    assert_eq!(parse(&text).media().len(), MAX_MEDIA);
    text.push_str("m=audio 9000 RTP/AVP 0\n");
    assert_eq!(
        SessionDescription::parse(&text),
        Err(SdpError::TooManyMedia {
            line: 5 + MAX_MEDIA + 1,
            max: MAX_MEDIA
        })
    );

    let mut big = String::from(BASE);
    while big.len() <= MAX_SDP_LEN {
        big.push_str("a=x-padding:0123456789abcdef0123456789abcdef\n");
    }
    assert_eq!(
        SessionDescription::parse(&big),
        Err(SdpError::TooLarge {
            len: big.len(),
            max: MAX_SDP_LEN
        })
    );
    // Just under the limit is fine.
    let fits = format!("{BASE}a=x:{}\n", "y".repeat(MAX_SDP_LEN - BASE.len() - 5));
    assert_eq!(fits.len(), MAX_SDP_LEN);
    assert!(SessionDescription::parse(&fits).is_ok());
}
