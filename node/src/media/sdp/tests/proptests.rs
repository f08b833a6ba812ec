//! Generated descriptions (proptest): valid ones round-trip exactly and keep their
//! meaning through anchoring; damaged and arbitrary text never panics.

use std::net::Ipv6Addr;

use proptest::prelude::*;

use super::*;

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
    ]
}

/// The text of a valid `c=` value.
fn arb_connection() -> impl Strategy<Value = String> {
    let count = || {
        proptest::option::of(1u32..5).prop_map(|n| n.map(|n| format!("/{n}")).unwrap_or_default())
    };
    prop_oneof![
        4 => arb_ip().prop_map(|a| format!("IN {} {a}", AddressType::of(a))),
        1 => (224u8..240, any::<[u8; 3]>(), any::<u8>(), count())
            .prop_map(|(a, [b, c, d], ttl, n)| format!("IN IP4 {a}.{b}.{c}.{d}/{ttl}{n}")),
        1 => (any::<[u8; 14]>(), count()).prop_map(|(rest, n)| {
            let mut b = [0xff; 16];
            b[2..].copy_from_slice(&rest);
            format!("IN IP6 {}{n}", Ipv6Addr::from(b))
        }),
    ]
}

/// Free text as SDP allows it, including non-ASCII.
fn arb_text() -> impl Strategy<Value = String> {
    "[ -~àáảãạđĐ]{0,16}"
}

/// An attribute this module does not interpret, as `name[:value]`.
fn arb_other_attribute() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![
            "mid", "label", "x-tenant", "ssrc", "setup", "maxptime", "tool", "rtcp-fb",
        ]),
        proptest::option::of(arb_text()),
    )
        .prop_map(|(name, value)| match value {
            Some(v) => format!("{name}:{v}"),
            None => name.to_owned(),
        })
}

fn arb_direction() -> impl Strategy<Value = Option<Direction>> {
    proptest::option::of(prop::sample::select(vec![
        Direction::SendRecv,
        Direction::SendOnly,
        Direction::RecvOnly,
        Direction::Inactive,
    ]))
}

/// (encoding, clock rate, channels) of a generated `a=rtpmap`.
type GenRtpMap = (&'static str, u32, Option<u16>);

#[derive(Debug, Clone)]
struct GenMedia {
    kind: &'static str,
    port: u16,
    port_count: Option<u16>,
    proto: &'static str,
    pts: Vec<u8>,
    /// Per payload type: its rtpmap and fmtp, if any.
    maps: Vec<(Option<GenRtpMap>, Option<String>)>,
    connection: Option<String>,
    info: Option<String>,
    bandwidths: Vec<u32>,
    direction: Option<Direction>,
    rtcp: Option<(u16, Option<IpAddr>)>,
    mux: bool,
    ptime: Option<u32>,
    others: Vec<String>,
}

fn arb_media() -> impl Strategy<Value = GenMedia> {
    let head = (
        prop::sample::select(vec![
            "audio",
            "video",
            "text",
            "application",
            "image",
            "x-custom",
        ]),
        any::<u16>(),
        proptest::option::of(1u16..4),
        prop::sample::select(vec![
            "RTP/AVP",
            "RTP/SAVP",
            "RTP/AVPF",
            "UDP/TLS/RTP/SAVPF",
            "udptl",
            "TCP/MSRP",
        ]),
        prop::collection::btree_set(0u8..128, 1..6).prop_shuffle_free(),
    );
    let map = (
        proptest::option::of((
            prop::sample::select(vec![
                "PCMU",
                "PCMA",
                "opus",
                "telephone-event",
                "G722",
                "H264",
                "speex",
            ]),
            prop::sample::select(vec![8000u32, 16000, 48000, 90000]),
            proptest::option::of(1u16..3),
        )),
        proptest::option::of("[a-z0-9=;-]{1,12}"),
    );
    let maps = prop::collection::vec(map, 6);
    let lines = (
        proptest::option::of(arb_connection()),
        proptest::option::of(arb_text()),
        prop::collection::vec(0u32..100_000, 0..2),
    );
    let attrs = (
        arb_direction(),
        proptest::option::of((any::<u16>(), proptest::option::of(arb_ip()))),
        any::<bool>(),
        proptest::option::of(1u32..200),
        prop::collection::vec(arb_other_attribute(), 0..4),
    );
    (head, maps, lines, attrs).prop_map(
        |(
            (kind, port, port_count, proto, pts),
            maps,
            (connection, info, bandwidths),
            (direction, rtcp, mux, ptime, others),
        )| GenMedia {
            kind,
            port,
            port_count,
            proto,
            pts,
            maps,
            connection,
            info,
            bandwidths,
            direction,
            rtcp,
            mux,
            ptime,
            others,
        },
    )
}

/// `prop_shuffle` on the set's order so payload types come in any preference order.
trait ShuffleFree {
    fn prop_shuffle_free(self) -> BoxedStrategy<Vec<u8>>;
}

impl<S: Strategy<Value = std::collections::BTreeSet<u8>> + 'static> ShuffleFree for S {
    fn prop_shuffle_free(self) -> BoxedStrategy<Vec<u8>> {
        self.prop_map(|s| s.into_iter().collect::<Vec<_>>())
            .prop_shuffle()
            .boxed()
    }
}

#[derive(Debug, Clone)]
struct GenSdp {
    username: String,
    session_id: u64,
    version: u64,
    origin: IpAddr,
    name: String,
    info: Option<String>,
    emails: Vec<String>,
    connection: Option<String>,
    bandwidths: Vec<u32>,
    repeat: bool,
    direction: Option<Direction>,
    others: Vec<String>,
    media: Vec<GenMedia>,
    lf: bool,
}

fn arb_sdp() -> impl Strategy<Value = GenSdp> {
    let head = (
        "-|[a-zA-Z0-9_.]{1,10}",
        any::<u64>(),
        any::<u64>(),
        arb_ip(),
        arb_text(),
        proptest::option::of(arb_text()),
        prop::collection::vec("[a-z]{1,8}@example\\.com", 0..2),
    );
    let rest = (
        proptest::option::of(arb_connection()),
        prop::collection::vec(0u32..100_000, 0..2),
        any::<bool>(),
        arb_direction(),
        prop::collection::vec(arb_other_attribute(), 0..3),
        prop::collection::vec(arb_media(), 0..4),
        any::<bool>(),
    );
    (head, rest).prop_map(
        |(
            (username, session_id, version, origin, name, info, emails),
            (connection, bandwidths, repeat, direction, others, media, lf),
        )| GenSdp {
            username,
            session_id,
            version,
            origin,
            name,
            info,
            emails,
            connection,
            bandwidths,
            repeat,
            direction,
            others,
            media,
            lf,
        },
    )
}

impl GenSdp {
    /// Canonical text (RFC order), with LF or CRLF endings.
    fn render(&self) -> String {
        let mut l = vec![
            "v=0".to_owned(),
            format!(
                "o={} {} {} IN {} {}",
                self.username,
                self.session_id,
                self.version,
                AddressType::of(self.origin),
                self.origin
            ),
            format!("s={}", self.name),
        ];
        l.extend(self.info.iter().map(|i| format!("i={i}")));
        l.extend(self.emails.iter().map(|e| format!("e={e}")));
        l.extend(self.connection.iter().map(|c| format!("c={c}")));
        l.extend(self.bandwidths.iter().map(|b| format!("b=AS:{b}")));
        l.push("t=0 0".into());
        if self.repeat {
            l.push("r=604800 3600 0 90000".into());
        }
        l.extend(self.others.iter().map(|a| format!("a={a}")));
        l.extend(self.direction.iter().map(|d| format!("a={d}")));
        for m in &self.media {
            let rtp = is_rtp_proto(m.proto);
            let formats: Vec<String> = m
                .pts
                .iter()
                .map(|pt| {
                    if rtp {
                        pt.to_string()
                    } else {
                        format!("f{pt}")
                    }
                })
                .collect();
            let count = m.port_count.map(|c| format!("/{c}")).unwrap_or_default();
            l.push(format!(
                "m={} {}{count} {} {}",
                m.kind,
                m.port,
                m.proto,
                formats.join(" ")
            ));
            l.extend(m.info.iter().map(|i| format!("i={i}")));
            // Without a session c=, every section needs its own.
            let conn = m.connection.clone().or_else(|| {
                self.connection
                    .is_none()
                    .then(|| "IN IP4 192.0.2.1".to_owned())
            });
            l.extend(conn.map(|c| format!("c={c}")));
            l.extend(m.bandwidths.iter().map(|b| format!("b=TIAS:{b}")));
            for (format, (map, fmtp)) in formats.iter().zip(&m.maps) {
                if let (true, Some((enc, clock, ch))) = (rtp, map) {
                    let ch = ch.map(|c| format!("/{c}")).unwrap_or_default();
                    l.push(format!("a=rtpmap:{format} {enc}/{clock}{ch}"));
                }
                if let Some(params) = fmtp {
                    l.push(format!("a=fmtp:{format} {params}"));
                }
            }
            l.extend(m.direction.iter().map(|d| format!("a={d}")));
            if let Some((port, addr)) = m.rtcp {
                let addr = addr
                    .map(|a| format!(" IN {} {a}", AddressType::of(a)))
                    .unwrap_or_default();
                l.push(format!("a=rtcp:{port}{addr}"));
            }
            if m.mux {
                l.push("a=rtcp-mux".into());
            }
            l.extend(m.ptime.iter().map(|p| format!("a=ptime:{p}")));
            l.extend(m.others.iter().map(|a| format!("a={a}")));
        }
        let eol = if self.lf { "\n" } else { "\r\n" };
        let mut text = l.join(eol);
        text.push_str(eol);
        text
    }
}

proptest! {
    #[test]
    fn generated_descriptions_round_trip(g in arb_sdp()) {
        let text = g.render();
        let sdp = SessionDescription::parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let written = sdp.to_string();
        prop_assert_eq!(&written, &text.replace("\r\n", "\n").replace('\n', "\r\n"));
        let again = SessionDescription::parse(&written).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&again, &sdp);

        prop_assert_eq!(sdp.origin().session_version(), g.version);
        prop_assert_eq!(sdp.session_name(), g.name.as_str());
        prop_assert_eq!(sdp.direction(), g.direction);
        prop_assert_eq!(sdp.media().len(), g.media.len());
        for (m, gm) in sdp.media().iter().zip(&g.media) {
            prop_assert_eq!(m.port(), gm.port);
            prop_assert_eq!(m.port_count(), gm.port_count);
            prop_assert_eq!(m.proto(), gm.proto);
            prop_assert_eq!(m.is_disabled(), gm.port == 0);
            prop_assert_eq!(m.rtcp_mux(), gm.mux);
            prop_assert_eq!(m.ptime(), gm.ptime);
            prop_assert_eq!(m.rtcp(), gm.rtcp.map(|(port, address)| Rtcp { port, address }));
            prop_assert_eq!(sdp.effective_direction(m), gm.direction.or(g.direction).unwrap_or(Direction::SendRecv));
            prop_assert!(sdp.effective_connection(m).is_some());
            if m.is_rtp() {
                prop_assert_eq!(m.payload_types().collect::<Vec<_>>(), gm.pts.clone());
                for (pt, (map, fmtp)) in gm.pts.iter().zip(&gm.maps) {
                    if let Some((enc, clock, ch)) = map {
                        prop_assert_eq!(m.rtpmap(*pt), Some(RtpMap { encoding: enc, clock_rate: *clock, channels: *ch }));
                    }
                    prop_assert_eq!(m.fmtp(*pt), fmtp.as_deref());
                }
            }
        }
    }

    #[test]
    fn anchoring_generated_descriptions_keeps_them_valid(
        g in arb_sdp(),
        which in any::<prop::sample::Index>(),
        relay in arb_ip(),
        rtp_port in 1u16..,
        rtcp_port in proptest::option::of(any::<u16>()),
    ) {
        let mut sdp = SessionDescription::parse(&g.render()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if sdp.media().is_empty() {
            return Ok(());
        }
        let index = which.index(sdp.media().len());
        let before: Vec<Option<IpAddr>> = sdp
            .media()
            .iter()
            .map(|m| sdp.effective_connection(m).map(Connection::address))
            .collect();
        let placement = rtcp_port.map_or(RtcpPlacement::Mux, RtcpPlacement::Port);
        sdp.anchor(index, relay, rtp_port, placement).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let sdp = SessionDescription::parse(&sdp.to_string()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let m = &sdp.media()[index];
        prop_assert_eq!(sdp.effective_connection(m).map(Connection::address), Some(relay.to_canonical()));
        prop_assert_eq!(m.port(), rtp_port);
        match placement {
            RtcpPlacement::Mux => prop_assert_eq!((m.rtcp(), m.rtcp_mux()), (None, true)),
            RtcpPlacement::Port(port) => prop_assert_eq!((m.rtcp(), m.rtcp_mux()), (Some(Rtcp { port, address: None }), false)),
        }
        for (i, (m, addr)) in sdp.media().iter().zip(before).enumerate() {
            if i != index && !m.is_disabled() {
                prop_assert_eq!(sdp.effective_connection(m).map(Connection::address), addr);
            }
        }
    }

    #[test]
    fn damaged_descriptions_never_panic(
        g in arb_sdp(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, "[ -~]{0,8}"), 1..4),
    ) {
        let text = g.render();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        for (at, op, junk) in edits {
            if lines.is_empty() {
                break;
            }
            let i = at.index(lines.len());
            match op {
                0 => { lines.remove(i); }
                1 => { let l = lines[i].clone(); lines.insert(i, l); }
                2 => lines[i].push_str(&junk),
                _ => { let cut = lines[i].char_indices().nth(junk.len()).map_or(lines[i].len(), |(c, _)| c); lines[i].truncate(cut); }
            }
        }
        let damaged = lines.join("\r\n");
        if let Ok(sdp) = SessionDescription::parse(&damaged) {
            let again = SessionDescription::parse(&sdp.to_string()).map_err(|e| TestCaseError::fail(format!("{e}\n{damaged}")))?;
            prop_assert_eq!(again, sdp);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "(v=0\r\n)?[a-z=0-9 ./:\r\n-]{0,300}") {
        if let Ok(sdp) = SessionDescription::parse(&text) {
            prop_assert_eq!(SessionDescription::parse(&sdp.to_string()), Ok(sdp));
        }
    }
}
