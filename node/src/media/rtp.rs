//! RTP packets (RFC 3550 §5.1): zero-copy parsing and allocation-free writing.
//!
//! [`RtpPacket::parse`] validates the fixed header, CSRC list, header extension and
//! padding against the datagram length and keeps only offsets into the caller's slice;
//! [`RtpHeader::write`] serializes into a caller-provided buffer. Nothing here allocates,
//! so both can run per packet on the relay's hot path.

/// Length of the fixed RTP header (without CSRCs or extension).
pub const FIXED_HEADER_LEN: usize = 12;
/// The only RTP version in use (RFC 3550).
pub const RTP_VERSION: u8 = 2;
/// At most 15 contributing sources fit in the 4-bit CC field.
pub const MAX_CSRCS: usize = 15;

/// Why a datagram is not a well-formed RTP packet, or why a packet does not fit a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Shorter than the 12-byte fixed header.
    #[error("RTP packet too short: {len} bytes, the fixed header needs 12")]
    TooShort { len: usize },
    /// Version field is not 2.
    #[error("RTP version {0} is not supported (only version 2)")]
    BadVersion(u8),
    /// The CSRC count promises more identifiers than the packet holds.
    #[error("CSRC count {count} needs {needed} bytes but the packet has {len}")]
    CsrcPastEnd {
        count: u8,
        needed: usize,
        len: usize,
    },
    /// The extension header or its declared length runs past the end of the packet.
    #[error("header extension needs {needed} bytes but the packet has {len}")]
    ExtensionPastEnd { needed: usize, len: usize },
    /// The padding bit is set but the last byte (padding count) is zero.
    #[error("padding bit set but padding count is 0")]
    PaddingZero,
    /// The padding count is larger than what follows the header.
    #[error("padding of {padding} bytes is longer than the {available} bytes after the header")]
    PaddingTooLong { padding: u8, available: usize },
    /// More than 15 CSRCs were given to the writer.
    #[error("{0} CSRCs given, at most 15 fit in an RTP header")]
    TooManyCsrcs(usize),
    /// A header extension body is not a multiple of 4 bytes or longer than 65535 words.
    #[error("header extension body of {0} bytes is not a multiple of 4 up to 262140")]
    BadExtensionLength(usize),
    /// The caller's buffer cannot hold the packet.
    #[error("buffer of {available} bytes cannot hold a {needed}-byte RTP packet")]
    BufferTooSmall { needed: usize, available: usize },
}

/// A validated, borrowed view of an RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    data: &'a [u8],
    /// Offset of the extension header (end of the CSRC list).
    csrc_end: usize,
    payload_start: usize,
    payload_end: usize,
}

impl<'a> RtpPacket<'a> {
    /// Parses and validates `data`. The padding count, if any, is checked against what
    /// follows the header so that [`payload`](Self::payload) never overlaps the header.
    pub fn parse(data: &'a [u8]) -> Result<Self, RtpError> {
        let len = data.len();
        if len < FIXED_HEADER_LEN {
            return Err(RtpError::TooShort { len });
        }
        let version = data[0] >> 6;
        if version != RTP_VERSION {
            return Err(RtpError::BadVersion(version));
        }
        let count = data[0] & 0x0f;
        let csrc_end = FIXED_HEADER_LEN + 4 * usize::from(count);
        if len < csrc_end {
            return Err(RtpError::CsrcPastEnd {
                count,
                needed: csrc_end,
                len,
            });
        }
        let mut payload_start = csrc_end;
        if data[0] & 0x10 != 0 {
            let header_end = csrc_end + 4;
            if len < header_end {
                return Err(RtpError::ExtensionPastEnd {
                    needed: header_end,
                    len,
                });
            }
            let words = u16::from_be_bytes([data[csrc_end + 2], data[csrc_end + 3]]);
            let needed = header_end + 4 * usize::from(words);
            if len < needed {
                return Err(RtpError::ExtensionPastEnd { needed, len });
            }
            payload_start = needed;
        }
        let mut payload_end = len;
        if data[0] & 0x20 != 0 {
            let available = len - payload_start;
            // The count byte itself is part of the padding, so `available` must be >= 1.
            let padding = match data.last() {
                Some(&p) if available > 0 => p,
                _ => {
                    return Err(RtpError::PaddingTooLong {
                        padding: 0,
                        available,
                    });
                }
            };
            if padding == 0 {
                return Err(RtpError::PaddingZero);
            }
            if usize::from(padding) > available {
                return Err(RtpError::PaddingTooLong { padding, available });
            }
            payload_end = len - usize::from(padding);
        }
        Ok(Self {
            data,
            csrc_end,
            payload_start,
            payload_end,
        })
    }

    /// The whole datagram this packet was parsed from.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }
    /// Whether the padding bit is set.
    pub fn has_padding(&self) -> bool {
        self.data[0] & 0x20 != 0
    }
    /// Number of padding bytes at the end (0 without padding).
    pub fn padding_len(&self) -> usize {
        self.data.len() - self.payload_end
    }
    /// Whether the marker bit is set (start of a talkspurt for audio).
    pub fn marker(&self) -> bool {
        self.data[1] & 0x80 != 0
    }
    /// The 7-bit payload type.
    pub fn payload_type(&self) -> u8 {
        self.data[1] & 0x7f
    }
    /// The 16-bit sequence number.
    pub fn sequence(&self) -> u16 {
        u16::from_be_bytes([self.data[2], self.data[3]])
    }
    /// The RTP media timestamp.
    pub fn timestamp(&self) -> u32 {
        be_u32(self.data, 4)
    }
    /// The synchronization source.
    pub fn ssrc(&self) -> u32 {
        be_u32(self.data, 8)
    }
    /// Number of contributing sources.
    pub fn csrc_count(&self) -> usize {
        usize::from(self.data[0] & 0x0f)
    }
    /// The contributing sources, in order.
    pub fn csrcs(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        let data = self.data;
        (0..self.csrc_count()).map(move |i| be_u32(data, FIXED_HEADER_LEN + 4 * i))
    }
    /// The header extension as (profile-defined id, body), if the extension bit is set.
    pub fn extension(&self) -> Option<(u16, &'a [u8])> {
        if self.data[0] & 0x10 == 0 {
            return None;
        }
        let at = self.csrc_end;
        let profile = u16::from_be_bytes([self.data[at], self.data[at + 1]]);
        Some((profile, &self.data[at + 4..self.payload_start]))
    }
    /// Offset of the payload in the datagram (header length).
    pub fn payload_offset(&self) -> usize {
        self.payload_start
    }
    /// The payload, without header and padding.
    pub fn payload(&self) -> &'a [u8] {
        &self.data[self.payload_start..self.payload_end]
    }
}

fn be_u32(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

/// The fields of an RTP header to write; the payload is given to [`write`](Self::write).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtpHeader<'a> {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub csrcs: &'a [u32],
    /// Profile-defined id and body (a multiple of 4 bytes).
    pub extension: Option<(u16, &'a [u8])>,
    /// Padding bytes to append (0 = no padding bit); the last one carries the count.
    pub padding: u8,
}

impl RtpHeader<'_> {
    /// Bytes the packet will take with a payload of `payload_len` bytes.
    pub fn packet_len(&self, payload_len: usize) -> usize {
        let ext = self.extension.map_or(0, |(_, body)| 4 + body.len());
        FIXED_HEADER_LEN + 4 * self.csrcs.len() + ext + payload_len + usize::from(self.padding)
    }

    /// Writes header, payload and padding into `buf`; returns the packet length.
    /// The payload type is masked to 7 bits.
    pub fn write(&self, payload: &[u8], buf: &mut [u8]) -> Result<usize, RtpError> {
        if self.csrcs.len() > MAX_CSRCS {
            return Err(RtpError::TooManyCsrcs(self.csrcs.len()));
        }
        if let Some((_, body)) = self.extension
            && (body.len() % 4 != 0 || body.len() / 4 > usize::from(u16::MAX))
        {
            return Err(RtpError::BadExtensionLength(body.len()));
        }
        let needed = self.packet_len(payload.len());
        let Some(out) = buf.get_mut(..needed) else {
            return Err(RtpError::BufferTooSmall {
                needed,
                available: buf.len(),
            });
        };
        // csrcs.len() <= 15 was checked above.
        let count = self.csrcs.len() as u8;
        out[0] = (RTP_VERSION << 6)
            | (u8::from(self.padding > 0) << 5)
            | (u8::from(self.extension.is_some()) << 4)
            | count;
        out[1] = (u8::from(self.marker) << 7) | (self.payload_type & 0x7f);
        out[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        let mut at = FIXED_HEADER_LEN;
        for csrc in self.csrcs {
            out[at..at + 4].copy_from_slice(&csrc.to_be_bytes());
            at += 4;
        }
        if let Some((profile, body)) = self.extension {
            out[at..at + 2].copy_from_slice(&profile.to_be_bytes());
            // body.len() / 4 <= u16::MAX was checked above.
            out[at + 2..at + 4].copy_from_slice(&((body.len() / 4) as u16).to_be_bytes());
            at += 4;
            out[at..at + body.len()].copy_from_slice(body);
            at += body.len();
        }
        out[at..at + payload.len()].copy_from_slice(payload);
        at += payload.len();
        if self.padding > 0 {
            let end = at + usize::from(self.padding);
            out[at..end - 1].fill(0);
            out[end - 1] = self.padding;
        }
        Ok(needed)
    }
}

/// RFC 5761 §4: with rtcp-mux, a packet whose second byte is in 192..=223 (marker bit
/// plus payload type 64..=95) is RTCP; RTP payload types in that range are not used.
pub fn is_rtcp(datagram: &[u8]) -> bool {
    matches!(datagram.get(1), Some(192..=223))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// PCMU, seq 0x1234, ts 0xdeadbeef, ssrc 0x01020304, marker, 4-byte payload.
    const PCMU: [u8; 16] = [
        0x80, 0x80, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0xff, 0xfe, 0x7f,
        0x00,
    ];

    #[test]
    fn parses_known_vector() {
        let p = RtpPacket::parse(&PCMU).expect("valid");
        assert!(p.marker());
        assert_eq!(p.payload_type(), 0);
        assert_eq!(p.sequence(), 0x1234);
        assert_eq!(p.timestamp(), 0xdead_beef);
        assert_eq!(p.ssrc(), 0x0102_0304);
        assert_eq!(p.csrc_count(), 0);
        assert_eq!(p.extension(), None);
        assert_eq!(p.payload(), &[0xff, 0xfe, 0x7f, 0x00]);
        assert_eq!(p.payload_offset(), 12);
    }

    #[test]
    fn parses_csrc_extension_and_padding() {
        let pkt = [
            0xb2, 0x08, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, // V=2 P X CC=2, PT 8
            0, 0, 0, 10, 0, 0, 0, 11, // CSRCs
            0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0, // one-word extension
            1, 2, 3, // payload
            0, 0, 3, // padding
        ];
        let p = RtpPacket::parse(&pkt).expect("valid");
        assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![10, 11]);
        assert_eq!(p.extension(), Some((0xbede, &[0x10, 0xaa, 0, 0][..])));
        assert_eq!(p.payload(), &[1, 2, 3]);
        assert_eq!(p.padding_len(), 3);
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(
            RtpPacket::parse(&PCMU[..11]),
            Err(RtpError::TooShort { len: 11 })
        );
        let mut v1 = PCMU;
        v1[0] = 0x40;
        assert_eq!(RtpPacket::parse(&v1), Err(RtpError::BadVersion(1)));
        let mut cc = PCMU;
        cc[0] = 0x82; // 2 CSRCs need 20 bytes, we have 16
        assert_eq!(
            RtpPacket::parse(&cc),
            Err(RtpError::CsrcPastEnd {
                count: 2,
                needed: 20,
                len: 16
            })
        );
        let mut ext = PCMU;
        ext[0] = 0x90; // extension header at 12..16 says 0x7f00 words
        assert!(matches!(
            RtpPacket::parse(&ext),
            Err(RtpError::ExtensionPastEnd { .. })
        ));
        let mut ext_hdr = [0u8; 14];
        ext_hdr[..14].copy_from_slice(&PCMU[..14]);
        ext_hdr[0] = 0x90; // extension header itself cut off
        assert_eq!(
            RtpPacket::parse(&ext_hdr),
            Err(RtpError::ExtensionPastEnd {
                needed: 16,
                len: 14
            })
        );
        let mut pad = PCMU;
        pad[0] = 0xa0;
        pad[15] = 5; // 5 bytes padding, only 4 after header
        assert_eq!(
            RtpPacket::parse(&pad),
            Err(RtpError::PaddingTooLong {
                padding: 5,
                available: 4
            })
        );
        pad[15] = 0;
        assert_eq!(RtpPacket::parse(&pad), Err(RtpError::PaddingZero));
        let mut pad_empty = [0u8; 12];
        pad_empty.copy_from_slice(&PCMU[..12]);
        pad_empty[0] = 0xa0; // padding bit, nothing after the header
        assert!(matches!(
            RtpPacket::parse(&pad_empty),
            Err(RtpError::PaddingTooLong { .. })
        ));
        pad[15] = 4; // padding that eats the whole payload is valid
        assert_eq!(RtpPacket::parse(&pad).map(|p| p.payload().len()), Ok(0));
    }

    #[test]
    fn writes_known_vector_and_checks_buffer() {
        let h = RtpHeader {
            marker: true,
            sequence: 0x1234,
            timestamp: 0xdead_beef,
            ssrc: 0x0102_0304,
            ..RtpHeader::default()
        };
        let mut buf = [0u8; 16];
        assert_eq!(h.write(&PCMU[12..], &mut buf), Ok(16));
        assert_eq!(buf, PCMU);
        assert_eq!(
            h.write(&PCMU[12..], &mut buf[..15]),
            Err(RtpError::BufferTooSmall {
                needed: 16,
                available: 15
            })
        );
        let many = [0u32; 16];
        assert_eq!(
            RtpHeader { csrcs: &many, ..h }.write(&[], &mut [0; 200]),
            Err(RtpError::TooManyCsrcs(16))
        );
        assert_eq!(
            RtpHeader {
                extension: Some((1, &[1, 2, 3])),
                ..h
            }
            .write(&[], &mut [0; 200]),
            Err(RtpError::BadExtensionLength(3))
        );
    }

    #[test]
    fn rtcp_mux_rule() {
        assert!(!is_rtcp(&PCMU));
        assert!(is_rtcp(&[0x80, 200, 0, 6])); // SR
        assert!(is_rtcp(&[0x81, 201, 0, 7])); // RR
        assert!(is_rtcp(&[0x81, 223]));
        assert!(!is_rtcp(&[0x80, 224]));
        assert!(!is_rtcp(&[0x80, 0x80 | 63]));
        assert!(!is_rtcp(&[0x80]));
    }

    /// marker, payload type, sequence, timestamp, SSRC, CSRCs, extension, padding, payload.
    type ArbHeader = (
        bool,
        u8,
        u16,
        u32,
        u32,
        Vec<u32>,
        Option<(u16, Vec<u8>)>,
        u8,
        Vec<u8>,
    );

    fn arb_header() -> impl Strategy<Value = ArbHeader> {
        (
            any::<bool>(),
            0u8..128,
            any::<u16>(),
            any::<u32>(),
            any::<u32>(),
            prop::collection::vec(any::<u32>(), 0..=15),
            prop::option::of((
                any::<u16>(),
                prop::collection::vec(any::<u8>(), 0..5).prop_map(|w| w.repeat(4)),
            )),
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..200),
        )
    }

    proptest! {
        #[test]
        fn write_then_parse_round_trips(
            (marker, pt, seq, ts, ssrc, csrcs, ext, padding, payload) in arb_header()
        ) {
            let h = RtpHeader {
                marker, payload_type: pt, sequence: seq, timestamp: ts, ssrc,
                csrcs: &csrcs,
                extension: ext.as_ref().map(|(id, b)| (*id, b.as_slice())),
                padding,
            };
            let mut buf = [0u8; 2048];
            let n = h.write(&payload, &mut buf).expect("fits");
            prop_assert_eq!(n, h.packet_len(payload.len()));
            let p = RtpPacket::parse(&buf[..n]).expect("parses");
            prop_assert_eq!(p.marker(), marker);
            prop_assert_eq!(p.payload_type(), pt);
            prop_assert_eq!(p.sequence(), seq);
            prop_assert_eq!(p.timestamp(), ts);
            prop_assert_eq!(p.ssrc(), ssrc);
            prop_assert_eq!(p.csrcs().collect::<Vec<_>>(), csrcs.clone());
            prop_assert_eq!(p.extension(), h.extension);
            prop_assert_eq!(p.payload(), &payload[..]);
            prop_assert_eq!(p.padding_len(), usize::from(padding));
        }
    }
}
