//! SDP tests: real offers and answers from SIPp, linphone and browsers read and written
//! back, every error with its line, anchoring and the other rewrites, and generated
//! descriptions (proptest) that must round-trip and never panic.

mod edit;
mod errors;
mod proptests;
mod read;

use super::*;

/// Test bodies are written with LF for readability; this gives the CRLF wire form.
fn crlf(s: &str) -> String {
    s.replace('\n', "\r\n")
}

fn parse(s: &str) -> SessionDescription {
    match SessionDescription::parse(s) {
        Ok(sdp) => sdp,
        Err(e) => panic!("{e}\n{s}"),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

/// A SIPp / Asterisk style audio offer.
const SIPP_OFFER: &str = "v=0
o=user1 53655765 2353687637 IN IP4 192.0.2.10
s=-
c=IN IP4 192.0.2.10
t=0 0
m=audio 6000 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv
";

/// A linphone/baresip style offer: wideband codecs, DTMF at two clock rates, RTCP on
/// its own port, a disabled video stream, bandwidth and RTCP XR lines.
const LINPHONE_OFFER: &str = "v=0
o=alice 2790 1374 IN IP4 198.51.100.7
s=Talk
c=IN IP4 198.51.100.7
b=AS:380
t=0 0
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
m=audio 7078 RTP/AVP 96 97 0 8 18 101 100
b=AS:80
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:97 speex/16000
a=fmtp:18 annexb=no
a=rtpmap:101 telephone-event/48000
a=rtpmap:100 telephone-event/8000
a=rtcp:7079
a=rtcp-fb:* trr-int 1000
a=rtcp-fb:96 nack
m=video 0 RTP/AVP 103
a=rtpmap:103 VP8/90000
";

/// An IPv6 answer that only receives, with an explicit RTCP address.
const IPV6_ANSWER: &str = "v=0
o=- 20518 0 IN IP6 2001:db8::7
s=-
c=IN IP6 2001:db8::7
t=0 0
m=audio 40000 RTP/AVP 9 0 101
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=rtcp:40001 IN IP6 2001:db8::7
a=recvonly
";

/// A browser offer: ICE, DTLS, BUNDLE, rtcp-mux, fmtp, no session-level c=.
const WEBRTC_OFFER: &str = "v=0
o=- 4611731400430051336 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
a=extmap-allow-mixed
a=msid-semantic: WMS stream1
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=candidate:1467250027 1 udp 2122260223 192.168.0.196 46243 typ host generation 0
a=candidate:435653019 1 udp 1686052607 203.0.113.77 46243 typ srflx raddr 192.168.0.196 rport 46243 generation 0
a=end-of-candidates
a=ice-ufrag:Oy7q
a=ice-pwd:ZxG0wq8lRU0kxf7r3Qa5dy0G
a=ice-options:trickle
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

/// Five session lines before the body under test: `{BASE}` + line 6 onwards.
const BASE: &str = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n";
