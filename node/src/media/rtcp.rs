//! RTCP compound packets (RFC 3550 §6): zero-copy parsing and allocation-free writing.
//!
//! [`RtcpCompound::parse`] walks every packet of a compound datagram and checks each
//! header, length and report-block count before handing out anything, so iteration is
//! infallible afterwards. Sender and receiver reports are decoded (they feed the remote
//! view in [`super::stats`]); SDES and BYE are recognized and skipped by their length;
//! unknown types (APP, feedback, XR) are passed through as raw bodies. The writers
//! produce SR and RR packets in a caller-provided buffer.

/// RTCP packet type of a sender report.
pub const PT_SR: u8 = 200;
/// RTCP packet type of a receiver report.
pub const PT_RR: u8 = 201;
/// RTCP packet type of source descriptions.
pub const PT_SDES: u8 = 202;
/// RTCP packet type of a goodbye.
pub const PT_BYE: u8 = 203;

const HEADER_LEN: usize = 4;
const SENDER_INFO_LEN: usize = 20;
/// Bytes of one report block.
pub const REPORT_BLOCK_LEN: usize = 24;
/// At most 31 report blocks fit the 5-bit count field.
pub const MAX_REPORT_BLOCKS: usize = 31;

/// Why a datagram is not a well-formed RTCP compound packet, or does not fit a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    /// Empty datagram, or fewer than 4 bytes left for a packet header at `offset`.
    #[error("RTCP packet at offset {offset} is too short for a header")]
    TooShort { offset: usize },
    /// Version field is not 2.
    #[error("RTCP version {version} at offset {offset} is not supported (only version 2)")]
    BadVersion { offset: usize, version: u8 },
    /// The length field runs past the end of the datagram.
    #[error("RTCP packet at offset {offset} declares {declared} bytes, only {available} left")]
    LengthPastEnd {
        offset: usize,
        declared: usize,
        available: usize,
    },
    /// Padding on a packet other than the last of the compound (RFC 3550 §6.4.1).
    #[error("RTCP packet at offset {offset} is padded but is not the last one")]
    PaddingNotLast { offset: usize },
    /// Padding count zero or longer than the packet body.
    #[error("RTCP packet at offset {offset} has an invalid padding count {padding}")]
    BadPadding { offset: usize, padding: u8 },
    /// A report's count promises more blocks (or SSRCs) than its length holds.
    #[error("RTCP packet type {packet_type} at offset {offset} is too short for its count {count}")]
    CountPastEnd {
        offset: usize,
        packet_type: u8,
        count: u8,
    },
    /// More than 31 report blocks given to a writer.
    #[error("{0} report blocks given, at most 31 fit in one report")]
    TooManyBlocks(usize),
    /// The caller's buffer cannot hold the packet.
    #[error("buffer of {available} bytes cannot hold a {needed}-byte RTCP packet")]
    BufferTooSmall { needed: usize, available: usize },
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256 units.
    pub fraction_lost: u8,
    /// Cumulative packets lost, a signed 24-bit value (duplicates can make it negative).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles << 16 | seq).
    pub highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received (0 if none).
    pub lsr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub dlsr: u32,
}

impl ReportBlock {
    fn decode(b: &[u8]) -> Self {
        // Sign-extend the 24-bit cumulative loss.
        let cumulative_lost = i32::from_be_bytes([b[5], b[6], b[7], 0]) >> 8;
        Self {
            ssrc: be_u32(b, 0),
            fraction_lost: b[4],
            cumulative_lost,
            highest_seq: be_u32(b, 8),
            jitter: be_u32(b, 12),
            lsr: be_u32(b, 16),
            dlsr: be_u32(b, 20),
        }
    }

    fn encode(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&self.ssrc.to_be_bytes());
        let lost = self
            .cumulative_lost
            .clamp(-0x80_0000, 0x7f_ffff)
            .to_be_bytes();
        out[4] = self.fraction_lost;
        out[5..8].copy_from_slice(&lost[1..4]);
        out[8..12].copy_from_slice(&self.highest_seq.to_be_bytes());
        out[12..16].copy_from_slice(&self.jitter.to_be_bytes());
        out[16..20].copy_from_slice(&self.lsr.to_be_bytes());
        out[20..24].copy_from_slice(&self.dlsr.to_be_bytes());
    }
}

/// The sender-info section of an SR.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderInfo {
    /// 64-bit NTP timestamp of the report.
    pub ntp_timestamp: u64,
    /// RTP timestamp corresponding to `ntp_timestamp`.
    pub rtp_timestamp: u32,
    /// Packets sent since the start of transmission.
    pub packet_count: u32,
    /// Payload octets sent since the start of transmission.
    pub octet_count: u32,
}

/// The report blocks of an SR or RR, validated by [`RtcpCompound::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlocks<'a> {
    data: &'a [u8],
}

impl<'a> ReportBlocks<'a> {
    /// The blocks in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = ReportBlock> + 'a {
        self.data
            .chunks_exact(REPORT_BLOCK_LEN)
            .map(ReportBlock::decode)
    }
    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.data.len() / REPORT_BLOCK_LEN
    }
    /// Whether there are no blocks.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// One packet of a compound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpPacket<'a> {
    /// Sender report: the sender's SSRC, its sender info and its reception reports.
    SenderReport {
        ssrc: u32,
        info: SenderInfo,
        blocks: ReportBlocks<'a>,
    },
    /// Receiver report: the reporter's SSRC and its reception reports.
    ReceiverReport { ssrc: u32, blocks: ReportBlocks<'a> },
    /// Source descriptions, skipped: only the chunk count is kept.
    SourceDescription { chunks: u8 },
    /// Goodbye, skipped: only the number of sources leaving is kept.
    Bye { sources: u8 },
    /// Any other type (APP, RTPFB/PSFB, XR): count field and body after the header.
    Other {
        packet_type: u8,
        count: u8,
        body: &'a [u8],
    },
}

/// A validated compound RTCP datagram; iterate it with [`packets`](Self::packets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpCompound<'a> {
    data: &'a [u8],
}

impl<'a> RtcpCompound<'a> {
    /// Validates every packet in `data`. Reduced-size RTCP (RFC 5506, a single non-report
    /// packet) is accepted; [`starts_with_report`](Self::starts_with_report) tells whether
    /// the RFC 3550 rule "first packet is SR or RR" holds.
    pub fn parse(data: &'a [u8]) -> Result<Self, RtcpError> {
        if data.is_empty() {
            return Err(RtcpError::TooShort { offset: 0 });
        }
        let mut offset = 0;
        while offset < data.len() {
            let (_, next) = parse_one(data, offset)?;
            offset = next;
        }
        Ok(Self { data })
    }

    /// Whether the first packet is an SR or RR, as RFC 3550 requires of compounds.
    pub fn starts_with_report(&self) -> bool {
        matches!(self.data.get(1), Some(&PT_SR | &PT_RR))
    }

    /// The packets in order.
    pub fn packets(&self) -> impl Iterator<Item = RtcpPacket<'a>> + 'a {
        let data = self.data;
        let mut offset = 0;
        std::iter::from_fn(move || {
            if offset >= data.len() {
                return None;
            }
            // Validated in `parse`; an error here cannot happen, so end the iteration.
            let (packet, next) = parse_one(data, offset).ok()?;
            offset = next;
            Some(packet)
        })
    }
}

/// Parses the packet at `offset`; returns it and the offset of the next one.
fn parse_one(data: &[u8], offset: usize) -> Result<(RtcpPacket<'_>, usize), RtcpError> {
    let Some(header) = data.get(offset..offset + HEADER_LEN) else {
        return Err(RtcpError::TooShort { offset });
    };
    let version = header[0] >> 6;
    if version != 2 {
        return Err(RtcpError::BadVersion { offset, version });
    }
    let count = header[0] & 0x1f;
    let packet_type = header[1];
    let declared = 4 * (usize::from(u16::from_be_bytes([header[2], header[3]])) + 1);
    let available = data.len() - offset;
    if declared > available {
        return Err(RtcpError::LengthPastEnd {
            offset,
            declared,
            available,
        });
    }
    let next = offset + declared;
    let mut body = &data[offset + HEADER_LEN..next];
    if header[0] & 0x20 != 0 {
        if next != data.len() {
            return Err(RtcpError::PaddingNotLast { offset });
        }
        let padding = body.last().copied().unwrap_or(0);
        if padding == 0 || usize::from(padding) > body.len() {
            return Err(RtcpError::BadPadding { offset, padding });
        }
        body = &body[..body.len() - usize::from(padding)];
    }
    let short = RtcpError::CountPastEnd {
        offset,
        packet_type,
        count,
    };
    let blocks_len = REPORT_BLOCK_LEN * usize::from(count);
    let packet = match packet_type {
        PT_SR => {
            let end = 4 + SENDER_INFO_LEN + blocks_len;
            if body.len() < end {
                return Err(short);
            }
            let info = SenderInfo {
                ntp_timestamp: (u64::from(be_u32(body, 4)) << 32) | u64::from(be_u32(body, 8)),
                rtp_timestamp: be_u32(body, 12),
                packet_count: be_u32(body, 16),
                octet_count: be_u32(body, 20),
            };
            let blocks = ReportBlocks {
                data: &body[4 + SENDER_INFO_LEN..end],
            };
            RtcpPacket::SenderReport {
                ssrc: be_u32(body, 0),
                info,
                blocks,
            }
        }
        PT_RR => {
            let end = 4 + blocks_len;
            if body.len() < end {
                return Err(short);
            }
            RtcpPacket::ReceiverReport {
                ssrc: be_u32(body, 0),
                blocks: ReportBlocks {
                    data: &body[4..end],
                },
            }
        }
        // Each SDES chunk holds at least an SSRC, so the count bounds the length from below.
        PT_SDES if body.len() < 4 * usize::from(count) => return Err(short),
        PT_SDES => RtcpPacket::SourceDescription { chunks: count },
        PT_BYE if body.len() < 4 * usize::from(count) => return Err(short),
        PT_BYE => RtcpPacket::Bye { sources: count },
        _ => RtcpPacket::Other {
            packet_type,
            count,
            body,
        },
    };
    Ok((packet, next))
}

fn be_u32(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

fn write_report(
    packet_type: u8,
    ssrc: u32,
    info: Option<&SenderInfo>,
    blocks: &[ReportBlock],
    buf: &mut [u8],
) -> Result<usize, RtcpError> {
    if blocks.len() > MAX_REPORT_BLOCKS {
        return Err(RtcpError::TooManyBlocks(blocks.len()));
    }
    let info_len = if info.is_some() { SENDER_INFO_LEN } else { 0 };
    let needed = HEADER_LEN + 4 + info_len + REPORT_BLOCK_LEN * blocks.len();
    let Some(out) = buf.get_mut(..needed) else {
        return Err(RtcpError::BufferTooSmall {
            needed,
            available: buf.len(),
        });
    };
    // blocks.len() <= 31 and needed <= 8 + 20 + 31 * 24, so both casts are lossless.
    out[0] = 0x80 | blocks.len() as u8;
    out[1] = packet_type;
    out[2..4].copy_from_slice(&((needed / 4 - 1) as u16).to_be_bytes());
    out[4..8].copy_from_slice(&ssrc.to_be_bytes());
    let mut at = 8;
    if let Some(info) = info {
        out[8..16].copy_from_slice(&info.ntp_timestamp.to_be_bytes());
        out[16..20].copy_from_slice(&info.rtp_timestamp.to_be_bytes());
        out[20..24].copy_from_slice(&info.packet_count.to_be_bytes());
        out[24..28].copy_from_slice(&info.octet_count.to_be_bytes());
        at = 28;
    }
    for block in blocks {
        block.encode(&mut out[at..at + REPORT_BLOCK_LEN]);
        at += REPORT_BLOCK_LEN;
    }
    Ok(needed)
}

/// Writes a sender report into `buf`; returns its length. Append further packets (SDES)
/// after it to build a compound.
pub fn write_sender_report(
    ssrc: u32,
    info: &SenderInfo,
    blocks: &[ReportBlock],
    buf: &mut [u8],
) -> Result<usize, RtcpError> {
    write_report(PT_SR, ssrc, Some(info), blocks, buf)
}

/// Writes a receiver report into `buf`; returns its length.
pub fn write_receiver_report(
    ssrc: u32,
    blocks: &[ReportBlock],
    buf: &mut [u8],
) -> Result<usize, RtcpError> {
    write_report(PT_RR, ssrc, None, blocks, buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RR from SSRC 1 with one block on SSRC 2, then SDES (CNAME "ab"), then BYE of SSRC 1.
    const COMPOUND: [u8; 52] = [
        0x81, 201, 0, 7, 0, 0, 0, 1, // RR header, reporter
        0, 0, 0, 2, // block: ssrc
        0x40, 0xff, 0xff, 0xfe, // fraction 64/256, cumulative -2
        0, 1, 0x12, 0x34, // highest seq: 1 cycle, 0x1234
        0, 0, 0, 80, // jitter
        0x11, 0x22, 0x33, 0x44, // LSR
        0, 1, 0, 0, // DLSR: 1 s
        0x81, 202, 0, 2, 0, 0, 0, 1, 1, 2, b'a', b'b', // SDES, one chunk
        0x81, 203, 0, 1, 0, 0, 0, 1, // BYE
    ];

    #[test]
    fn parses_known_compound() {
        let c = RtcpCompound::parse(&COMPOUND).expect("valid");
        assert!(c.starts_with_report());
        let packets: Vec<_> = c.packets().collect();
        assert_eq!(packets.len(), 3);
        let RtcpPacket::ReceiverReport { ssrc, blocks } = packets[0] else {
            panic!("not an RR: {:?}", packets[0]);
        };
        assert_eq!(ssrc, 1);
        let blocks: Vec<_> = blocks.iter().collect();
        assert_eq!(
            blocks,
            vec![ReportBlock {
                ssrc: 2,
                fraction_lost: 64,
                cumulative_lost: -2,
                highest_seq: 0x1_1234,
                jitter: 80,
                lsr: 0x1122_3344,
                dlsr: 0x1_0000,
            }]
        );
        assert_eq!(packets[1], RtcpPacket::SourceDescription { chunks: 1 });
        assert_eq!(packets[2], RtcpPacket::Bye { sources: 1 });
    }

    #[test]
    fn sender_report_round_trip() {
        let info = SenderInfo {
            ntp_timestamp: 0xe000_0000_8000_0000,
            rtp_timestamp: 160,
            packet_count: 7,
            octet_count: 1120,
        };
        let block = ReportBlock {
            ssrc: 9,
            cumulative_lost: 0x7f_ffff,
            ..Default::default()
        };
        let mut buf = [0u8; 64];
        let n = write_sender_report(5, &info, &[block], &mut buf).expect("fits");
        assert_eq!(n, 52);
        let c = RtcpCompound::parse(&buf[..n]).expect("valid");
        let Some(RtcpPacket::SenderReport {
            ssrc,
            info: got,
            blocks,
        }) = c.packets().next()
        else {
            panic!("not an SR");
        };
        assert_eq!((ssrc, got), (5, info));
        assert_eq!(blocks.iter().collect::<Vec<_>>(), vec![block]);
        assert_eq!(
            write_sender_report(5, &info, &[block], &mut buf[..51]),
            Err(RtcpError::BufferTooSmall {
                needed: 52,
                available: 51
            })
        );
        assert_eq!(
            write_receiver_report(5, &[block; 32], &mut [0; 1024]),
            Err(RtcpError::TooManyBlocks(32))
        );
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(
            RtcpCompound::parse(&[]),
            Err(RtcpError::TooShort { offset: 0 })
        );
        assert_eq!(
            RtcpCompound::parse(&COMPOUND[..3]),
            Err(RtcpError::TooShort { offset: 0 })
        );
        // Trailing garbage shorter than a header.
        let mut tail = COMPOUND.to_vec();
        tail.extend_from_slice(&[0x80, 200]);
        assert_eq!(
            RtcpCompound::parse(&tail),
            Err(RtcpError::TooShort { offset: 52 })
        );
        let mut v = COMPOUND;
        v[32] = 0x41;
        assert_eq!(
            RtcpCompound::parse(&v),
            Err(RtcpError::BadVersion {
                offset: 32,
                version: 1
            })
        );
        assert_eq!(
            RtcpCompound::parse(&COMPOUND[..30]),
            Err(RtcpError::LengthPastEnd {
                offset: 0,
                declared: 32,
                available: 30
            })
        );
        let mut count = COMPOUND;
        count[0] = 0x82; // two blocks in a 32-byte RR
        assert_eq!(
            RtcpCompound::parse(&count),
            Err(RtcpError::CountPastEnd {
                offset: 0,
                packet_type: PT_RR,
                count: 2
            })
        );
        let mut bye = COMPOUND;
        bye[44] = 0x82; // BYE of two sources with room for one
        assert!(matches!(
            RtcpCompound::parse(&bye),
            Err(RtcpError::CountPastEnd { .. })
        ));
        // An SDES claiming a chunk with no body (rtcp-types accepts it; RFC 3550 §6.5
        // says every chunk holds at least an SSRC).
        assert_eq!(
            RtcpCompound::parse(&[0x81, PT_SDES, 0, 0]),
            Err(RtcpError::CountPastEnd {
                offset: 0,
                packet_type: PT_SDES,
                count: 1
            })
        );
        let mut pad = COMPOUND;
        pad[0] = 0xa1; // padding on the first packet
        assert_eq!(
            RtcpCompound::parse(&pad),
            Err(RtcpError::PaddingNotLast { offset: 0 })
        );
        let mut last = COMPOUND;
        last[44] = 0xa1;
        last[51] = 0; // padding count 0
        assert_eq!(
            RtcpCompound::parse(&last),
            Err(RtcpError::BadPadding {
                offset: 44,
                padding: 0
            })
        );
        last[51] = 5; // longer than the 4-byte body
        assert!(matches!(
            RtcpCompound::parse(&last),
            Err(RtcpError::BadPadding { .. })
        ));
    }

    #[test]
    fn unknown_types_pass_through() {
        let fb = [0x81, 205, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2];
        let c = RtcpCompound::parse(&fb).expect("valid");
        assert!(!c.starts_with_report());
        assert_eq!(
            c.packets().collect::<Vec<_>>(),
            vec![RtcpPacket::Other {
                packet_type: 205,
                count: 1,
                body: &fb[4..]
            }]
        );
    }

    fn arb_block() -> impl Strategy<Value = ReportBlock> {
        (
            any::<u32>(),
            any::<u8>(),
            -0x80_0000i32..=0x7f_ffff,
            any::<[u32; 4]>(),
        )
            .prop_map(
                |(ssrc, fraction_lost, cumulative_lost, [highest_seq, jitter, lsr, dlsr])| {
                    ReportBlock {
                        ssrc,
                        fraction_lost,
                        cumulative_lost,
                        highest_seq,
                        jitter,
                        lsr,
                        dlsr,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn receiver_report_round_trips(ssrc in any::<u32>(), blocks in prop::collection::vec(arb_block(), 0..=31)) {
            let mut buf = [0u8; 1024];
            let n = write_receiver_report(ssrc, &blocks, &mut buf).expect("fits");
            let c = RtcpCompound::parse(&buf[..n]).expect("valid");
            let packets: Vec<_> = c.packets().collect();
            prop_assert_eq!(packets.len(), 1);
            let RtcpPacket::ReceiverReport { ssrc: got, blocks: got_blocks } = packets[0] else {
                return Err(TestCaseError::fail("not an RR"));
            };
            prop_assert_eq!(got, ssrc);
            prop_assert_eq!(got_blocks.iter().collect::<Vec<_>>(), blocks);
        }

        /// Arbitrary bytes never panic, and what parses iterates to the end of the datagram.
        #[test]
        fn arbitrary_input_never_panics(data in prop::collection::vec(any::<u8>(), 0..128)) {
            if let Ok(c) = RtcpCompound::parse(&data) {
                prop_assert!(c.packets().count() >= 1);
            }
        }
    }
}
