//! The SDP the generator offers and answers with, and the one thing it needs from the
//! relay's rewritten SDP: where to send (the audio stream's connection address and port).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// Why the relay's SDP gives no audio destination.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("no m=audio line")]
    NoAudio,
    #[error("bad m=audio line {0:?}")]
    BadMedia(String),
    #[error("no c= line for the audio stream")]
    NoConnection,
    #[error("bad c= line {0:?}")]
    BadConnection(String),
    #[error("the audio stream is disabled (port 0)")]
    Disabled,
}

/// A G.711 μ-law SDP with telephone-event, 20 ms packets, as a phone would send.
/// `session_id` keeps `o=` unique per call and side.
pub fn audio_sdp(ip: IpAddr, port: u16, session_id: u64) -> String {
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut s = String::with_capacity(256);
    // Writing to a String cannot fail.
    let _ = write!(
        s,
        "v=0\r\n\
         o=rtpgen {session_id} 1 IN {family} {ip}\r\n\
         s=rtpgen\r\n\
         c=IN {family} {ip}\r\n\
         t=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\n\
         a=ptime:20\r\n\
         a=sendrecv\r\n"
    );
    s
}

/// The address RTP for the first audio stream must be sent to: the media-level `c=` if
/// the stream has one, else the session-level `c=`, with the `m=audio` port.
pub fn audio_destination(sdp: &str) -> Result<SocketAddr, SdpError> {
    let mut session_addr: Option<IpAddr> = None;
    let mut seen_media = false;
    let mut in_audio = false;
    let mut audio_port: Option<u16> = None;
    let mut media_addr: Option<IpAddr> = None;
    for line in sdp.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(rest) = line.strip_prefix("m=") {
            if in_audio {
                break; // only the first audio stream matters
            }
            seen_media = true;
            if rest.starts_with("audio ") {
                in_audio = true;
                let port = rest
                    .split_ascii_whitespace()
                    .nth(1)
                    .and_then(|p| p.split('/').next())
                    .and_then(|p| p.parse::<u16>().ok())
                    .ok_or_else(|| SdpError::BadMedia(line.to_owned()))?;
                audio_port = Some(port);
            }
        } else if let Some(rest) = line.strip_prefix("c=") {
            let addr =
                parse_connection(rest).ok_or_else(|| SdpError::BadConnection(line.to_owned()))?;
            if in_audio {
                media_addr = Some(addr);
            } else if !seen_media {
                session_addr = Some(addr);
            }
        }
    }
    let port = audio_port.ok_or(SdpError::NoAudio)?;
    if port == 0 {
        return Err(SdpError::Disabled);
    }
    let ip = media_addr.or(session_addr).ok_or(SdpError::NoConnection)?;
    Ok(SocketAddr::new(ip, port))
}

/// `IN IP4 127.0.0.1` (an optional `/ttl` suffix is ignored).
fn parse_connection(rest: &str) -> Option<IpAddr> {
    let mut it = rest.split_ascii_whitespace();
    if it.next()? != "IN" {
        return None;
    }
    let family = it.next()?;
    let addr = it.next()?.split('/').next()?;
    let ip: IpAddr = addr.parse().ok()?;
    match (family, ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Some(ip),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_pcmu_offer() {
        let sdp = audio_sdp("127.0.0.1".parse().unwrap(), 4000, 7);
        assert!(sdp.starts_with("v=0\r\no=rtpgen 7 1 IN IP4 127.0.0.1\r\n"));
        assert!(sdp.contains("c=IN IP4 127.0.0.1\r\n"));
        assert!(sdp.contains("m=audio 4000 RTP/AVP 0 101\r\n"));
        assert!(sdp.contains("a=rtpmap:0 PCMU/8000\r\n"));
        assert!(sdp.contains("a=rtpmap:101 telephone-event/8000\r\n"));
        assert!(sdp.contains("a=ptime:20\r\n"));
        assert!(sdp.ends_with("\r\n"));
        assert_eq!(
            audio_destination(&sdp),
            Ok("127.0.0.1:4000".parse().unwrap())
        );
    }

    #[test]
    fn reads_an_rtpengine_answer() {
        // The shape rtpengine returns with replace=[origin, session-connection].
        let sdp = "v=0\r\n\
                   o=rtpgen 1 1 IN IP4 127.0.0.1\r\n\
                   s=rtpgen\r\n\
                   c=IN IP4 127.0.0.1\r\n\
                   t=0 0\r\n\
                   m=audio 30012 RTP/AVP 0 101\r\n\
                   a=rtpmap:0 PCMU/8000\r\n\
                   a=rtpmap:101 telephone-event/8000\r\n\
                   a=fmtp:101 0-16\r\n\
                   a=sendrecv\r\n\
                   a=rtcp:30013\r\n\
                   a=ptime:20\r\n";
        assert_eq!(
            audio_destination(sdp),
            Ok("127.0.0.1:30012".parse().unwrap())
        );
    }

    #[test]
    fn media_level_connection_wins() {
        let sdp = "v=0\nc=IN IP4 10.0.0.1\nm=video 5000 RTP/AVP 96\nc=IN IP4 10.0.0.3\n\
                   m=audio 6000 RTP/AVP 0\nc=IN IP4 127.0.0.2\nm=audio 7000 RTP/AVP 0\n";
        assert_eq!(
            audio_destination(sdp),
            Ok("127.0.0.2:6000".parse().unwrap())
        );
    }

    #[test]
    fn session_connection_applies_when_the_stream_has_none() {
        let sdp = "v=0\nc=IN IP6 ::1\nm=audio 6000/2 RTP/AVP 0\n";
        assert_eq!(audio_destination(sdp), Ok("[::1]:6000".parse().unwrap()));
    }

    #[test]
    fn reports_what_is_missing() {
        assert_eq!(
            audio_destination("v=0\r\nc=IN IP4 127.0.0.1\r\n"),
            Err(SdpError::NoAudio)
        );
        assert_eq!(
            audio_destination("v=0\r\nm=audio 5 RTP/AVP 0\r\n"),
            Err(SdpError::NoConnection)
        );
        assert_eq!(
            audio_destination("c=IN IP4 127.0.0.1\r\nm=audio 0 RTP/AVP 0\r\n"),
            Err(SdpError::Disabled)
        );
        assert!(matches!(
            audio_destination("c=IN IP4 127.0.0.1\r\nm=audio x RTP/AVP 0\r\n"),
            Err(SdpError::BadMedia(_))
        ));
        assert!(matches!(
            audio_destination("c=IN IP4 ::1\r\nm=audio 5 RTP/AVP 0\r\n"),
            Err(SdpError::BadConnection(_))
        ));
    }
}
