//! Cross-module tests: our codecs against independent crates (`rtp-types`,
//! `rtcp-types`) as oracles, and the receive pipeline from RTP bytes to the peer's view
//! of our RTCP receiver reports.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::mos::CodecImpairment;
use super::rtcp::{self, RtcpCompound, RtcpPacket};
use super::rtp::{RtpHeader, RtpPacket};
use super::stats::{Arrival, ReceiverStats, RemoteReception};

/// One RTCP packet to assemble: type, count field, body words, body filler, version.
type ArbRtcp = (u8, u8, Vec<[u8; 4]>, u8);

fn arb_rtcp() -> impl Strategy<Value = ArbRtcp> {
    (
        prop::sample::select(vec![200u8, 201, 202, 203, 204, 205, 206, 207]),
        0u8..4,
        prop::collection::vec(any::<[u8; 4]>(), 0..40),
        prop::sample::select(vec![2u8, 2, 2, 2, 2, 2, 2, 1]),
    )
}

fn assemble(packets: &[ArbRtcp]) -> Vec<u8> {
    let mut out = Vec::new();
    for (pt, count, body, version) in packets {
        out.push((version << 6) | count);
        out.push(*pt);
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend(body.iter().flatten());
    }
    out
}

proptest! {
        /// The `rtp-types` crate is an independent oracle: on any input, both accept or
        /// both reject, and accepted packets agree field by field.
        #[test]
        fn agrees_with_rtp_types(data in prop::collection::vec(any::<u8>(), 0..64), first in any::<u8>()) {
            let mut data = data;
            if let Some(b) = data.first_mut() {
                // Bias towards version 2 so that the deeper checks are exercised.
                *b = (first & 0x3f) | 0x80;
            }
            let ours = RtpPacket::parse(&data);
            let theirs = rtp_types::RtpPacket::parse(&data);
            prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "{:?} vs {:?}", ours, theirs.err());
            if let (Ok(a), Ok(b)) = (ours, theirs) {
                prop_assert_eq!(a.marker(), b.marker_bit());
                prop_assert_eq!(a.payload_type(), b.payload_type());
                prop_assert_eq!(a.sequence(), b.sequence_number());
                prop_assert_eq!(a.timestamp(), b.timestamp());
                prop_assert_eq!(a.ssrc(), b.ssrc());
                prop_assert_eq!(a.csrcs().collect::<Vec<_>>(), b.csrc().collect::<Vec<_>>());
                prop_assert_eq!(a.extension(), b.extension());
                prop_assert_eq!(a.payload(), b.payload());
            }
        }

    /// The `rtcp-types` crate is an independent oracle for compounds. It validates more
    /// of what we skip (SDES items, APP, feedback), so: whatever it accepts we accept,
    /// with identical SR/RR fields, except an SDES too short for its chunk count; for
    /// compounds of reports only, both agree exactly.
    #[test]
    fn agrees_with_rtcp_types(
        packets in prop::collection::vec(arb_rtcp(), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut data = assemble(&packets);
        if truncate {
            data.truncate(cut.index(data.len() + 1));
        }
        let theirs = rtcp_types::Compound::parse(&data)
            .and_then(|c| c.collect::<Result<Vec<_>, _>>());
        let ours = RtcpCompound::parse(&data);
        let reports_only = packets.iter().all(|(pt, ..)| *pt == rtcp::PT_SR || *pt == rtcp::PT_RR);
        if reports_only {
            prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "{:?} vs {:?}", ours, theirs);
        }
        let Ok(theirs) = theirs else { return Ok(()) };
        let ours = match ours {
            Ok(ours) => ours,
            // rtcp-types accepts an SDES whose chunk count exceeds its body (RFC 3550
            // §6.5: every chunk holds at least an SSRC); we do not.
            Err(rtcp::RtcpError::CountPastEnd { packet_type: rtcp::PT_SDES, .. }) => return Ok(()),
            Err(e) => return Err(TestCaseError::fail(format!("we reject what rtcp-types accepts: {e}"))),
        };
        let ours: Vec<_> = ours.packets().collect();
        prop_assert_eq!(ours.len(), theirs.len());
        for (a, b) in ours.iter().zip(&theirs) {
            match (a, b) {
                (RtcpPacket::SenderReport { ssrc, info, blocks }, rtcp_types::Packet::Sr(sr)) => {
                    prop_assert_eq!(*ssrc, sr.ssrc());
                    prop_assert_eq!(info.ntp_timestamp, sr.ntp_timestamp());
                    prop_assert_eq!(info.rtp_timestamp, sr.rtp_timestamp());
                    prop_assert_eq!(info.packet_count, sr.packet_count());
                    prop_assert_eq!(info.octet_count, sr.octet_count());
                    same_blocks(blocks.iter(), sr.report_blocks())?;
                }
                (RtcpPacket::ReceiverReport { ssrc, blocks }, rtcp_types::Packet::Rr(rr)) => {
                    prop_assert_eq!(*ssrc, rr.ssrc());
                    same_blocks(blocks.iter(), rr.report_blocks())?;
                }
                (RtcpPacket::SourceDescription { .. }, rtcp_types::Packet::Sdes(_))
                | (RtcpPacket::Bye { .. }, rtcp_types::Packet::Bye(_))
                | (RtcpPacket::Other { .. }, _) => {}
                (a, b) => prop_assert!(false, "{:?} vs {:?}", a, b),
            }
        }
    }
}

fn same_blocks<'a>(
    ours: impl Iterator<Item = rtcp::ReportBlock>,
    theirs: impl Iterator<Item = rtcp_types::ReportBlock<'a>>,
) -> Result<(), TestCaseError> {
    let ours: Vec<_> = ours.collect();
    let theirs: Vec<_> = theirs.collect();
    prop_assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(&theirs) {
        prop_assert_eq!(a.ssrc, b.ssrc());
        prop_assert_eq!(a.fraction_lost, b.fraction_lost());
        prop_assert_eq!(a.cumulative_lost as u32 & 0x00ff_ffff, b.cumulative_lost());
        prop_assert_eq!(a.highest_seq, b.extended_sequence_number());
        prop_assert_eq!(a.jitter, b.interarrival_jitter());
        prop_assert_eq!(a.lsr, b.last_sender_report_timestamp());
        prop_assert_eq!(a.dlsr, b.delay_since_last_sender_report_timestamp());
    }
    Ok(())
}

/// RTP bytes -> parse -> receiver stats -> our RR bytes -> parse -> the sender's view.
#[test]
fn receive_pipeline_reports_loss_to_the_sender() {
    let t0 = Instant::now();
    let mut stats = ReceiverStats::new();
    let mut buf = [0u8; 200];
    let payload = [0xffu8; 160];
    for n in 0..1000u32 {
        if n % 10 == 5 {
            continue; // every tenth packet lost on the way
        }
        let header = RtpHeader {
            sequence: (65_000 + n) as u16, // wraps after packet 535
            timestamp: n * 160,
            ssrc: 0xcafe,
            ..RtpHeader::default()
        };
        let len = header.write(&payload, &mut buf).expect("fits");
        let packet = RtpPacket::parse(&buf[..len]).expect("own packets parse");
        stats.on_packet(Arrival {
            sequence: packet.sequence(),
            rtp_timestamp: packet.timestamp(),
            at: t0 + Duration::from_millis(20) * n,
            clock_rate: 8000,
            payload_len: packet.payload().len(),
        });
    }
    assert_eq!(stats.lost(), 100);
    // One wrap: 2^16 cycles plus sequence 65_999 - 2^16.
    assert_eq!(stats.extended_highest(), 65_999);
    let block = stats.report_block(0xcafe, t0 + Duration::from_secs(20));
    let mut rr = [0u8; 64];
    let len = rtcp::write_receiver_report(0xbeef, &[block], &mut rr).expect("fits");
    let compound = RtcpCompound::parse(&rr[..len]).expect("own reports parse");
    let mut remote = RemoteReception::default();
    for packet in compound.packets() {
        if let RtcpPacket::ReceiverReport { blocks, .. } = packet {
            for block in blocks.iter() {
                remote.apply(&block, 8000, 0);
            }
        }
    }
    assert_eq!(remote.last.map(|b| b.cumulative_lost), Some(100));
    // 100 of 999 expected (the first packet is spent on probation): 25/256.
    assert_eq!(remote.last.map(|b| b.fraction_lost), Some(25));
    assert_eq!(remote.jitter_ms, 0.0);
    let mos = stats.mos(CodecImpairment::G711_PLC, Duration::from_millis(20));
    assert!((2.5..4.0).contains(&mos), "10% loss gives {mos}");
}
