//! The generator's RTP packets: 12-byte RTP header (PCMU, payload type 0) and 160 bytes of
//! "audio" (20 ms at 8 kHz) whose first bytes carry what the receiver needs to account
//! for the packet: which call and direction, which packet of the stream, and when it was
//! sent. The rest is μ-law silence (0xFF). A relay forwards the payload untouched.

/// RTP header length without CSRCs or extensions.
pub const RTP_HEADER: usize = 12;
/// One 20 ms G.711 frame.
pub const PAYLOAD: usize = 160;
pub const PACKET: usize = RTP_HEADER + PAYLOAD;
/// RTP timestamp units per packet (8 kHz * 20 ms).
pub const TS_STEP: u32 = 160;

const MAGIC: [u8; 4] = *b"TDRG";
// Payload layout (big-endian): magic, call, direction, 3 spare, index, sent_ns.
const OFF_MAGIC: usize = RTP_HEADER;
const OFF_CALL: usize = OFF_MAGIC + 4;
const OFF_DIR: usize = OFF_CALL + 4;
const OFF_INDEX: usize = OFF_DIR + 4;
const OFF_SENT: usize = OFF_INDEX + 4;
const OFF_END: usize = OFF_SENT + 8;

/// Which way a packet goes through the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Caller -> relay (caller-facing port) -> callee.
    CallerToCallee = 0,
    /// Callee -> relay (callee-facing port) -> caller.
    CalleeToCaller = 1,
}

impl Direction {
    pub const BOTH: [Direction; 2] = [Direction::CallerToCallee, Direction::CalleeToCaller];

    pub fn index(self) -> usize {
        self as usize
    }
}

/// What the receiver reads back from a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub call: u32,
    pub direction: Direction,
    /// Packet number within the stream (0, 1, 2, ...), as the RTP sequence number
    /// would be without wrapping.
    pub index: u32,
    /// Send time, ns since the generator's epoch.
    pub sent_ns: u64,
}

/// Per-stream RTP identity: random SSRC and starting sequence/timestamp.
#[derive(Debug, Clone, Copy)]
pub struct RtpIdentity {
    pub ssrc: u32,
    pub seq0: u16,
    pub ts0: u32,
}

impl RtpIdentity {
    pub fn random() -> Self {
        RtpIdentity {
            ssrc: rand::random(),
            seq0: rand::random(),
            ts0: rand::random(),
        }
    }
}

/// Writes packet `index` of a stream into `buf` (PACKET bytes), with `sent_ns` zero;
/// [`set_sent`] fills it in just before the send.
pub fn write(
    buf: &mut [u8; PACKET],
    id: &RtpIdentity,
    call: u32,
    direction: Direction,
    index: u32,
) {
    let seq = id.seq0.wrapping_add(index as u16);
    let ts = id.ts0.wrapping_add(index.wrapping_mul(TS_STEP));
    buf[0] = 0x80; // V=2, no padding, no extension, no CSRC
    buf[1] = 0; // no marker, PT 0 (PCMU)
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&ts.to_be_bytes());
    buf[8..12].copy_from_slice(&id.ssrc.to_be_bytes());
    buf[OFF_MAGIC..OFF_CALL].copy_from_slice(&MAGIC);
    buf[OFF_CALL..OFF_DIR].copy_from_slice(&call.to_be_bytes());
    buf[OFF_DIR..OFF_INDEX].copy_from_slice(&[direction as u8, 0, 0, 0]);
    buf[OFF_INDEX..OFF_SENT].copy_from_slice(&index.to_be_bytes());
    buf[OFF_SENT..OFF_END].fill(0);
    buf[OFF_END..].fill(0xFF);
}

pub fn set_sent(buf: &mut [u8; PACKET], sent_ns: u64) {
    buf[OFF_SENT..OFF_END].copy_from_slice(&sent_ns.to_be_bytes());
}

/// Reads the stamp back; `None` for anything that is not one of our packets.
pub fn read(pkt: &[u8]) -> Option<Stamp> {
    if pkt.len() != PACKET || pkt[0] & 0xC0 != 0x80 || pkt[OFF_MAGIC..OFF_CALL] != MAGIC {
        return None;
    }
    let u32_at = |o: usize| u32::from_be_bytes([pkt[o], pkt[o + 1], pkt[o + 2], pkt[o + 3]]);
    let direction = match pkt[OFF_DIR] {
        0 => Direction::CallerToCallee,
        1 => Direction::CalleeToCaller,
        _ => return None,
    };
    let mut sent = [0u8; 8];
    sent.copy_from_slice(&pkt[OFF_SENT..OFF_END]);
    Some(Stamp {
        call: u32_at(OFF_CALL),
        direction,
        index: u32_at(OFF_INDEX),
        sent_ns: u64::from_be_bytes(sent),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_pcmu_rtp_packet_and_reads_it_back() {
        let id = RtpIdentity {
            ssrc: 0xDEADBEEF,
            seq0: 0xFFFF,
            ts0: 0xFFFF_FF00,
        };
        let mut buf = [0u8; PACKET];
        write(&mut buf, &id, 1234, Direction::CalleeToCaller, 2);
        set_sent(&mut buf, 987_654_321);
        assert_eq!(buf[0], 0x80);
        assert_eq!(buf[1], 0);
        assert_eq!(u16::from_be_bytes([buf[2], buf[3]]), 1); // wrapped
        assert_eq!(u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]), 0x40); // wrapped
        assert_eq!(&buf[8..12], &0xDEADBEEFu32.to_be_bytes());
        assert!(buf[OFF_END..].iter().all(|&b| b == 0xFF));
        assert_eq!(
            read(&buf),
            Some(Stamp {
                call: 1234,
                direction: Direction::CalleeToCaller,
                index: 2,
                sent_ns: 987_654_321
            })
        );
    }

    #[test]
    fn ignores_foreign_packets() {
        let mut buf = [0u8; PACKET];
        write(
            &mut buf,
            &RtpIdentity {
                ssrc: 1,
                seq0: 0,
                ts0: 0,
            },
            1,
            Direction::CallerToCallee,
            0,
        );
        assert!(read(&buf[..PACKET - 1]).is_none());
        let mut other = buf;
        other[OFF_MAGIC] = b'x';
        assert!(read(&other).is_none());
        let mut other = buf;
        other[OFF_DIR] = 2;
        assert!(read(&other).is_none());
        let mut other = buf;
        other[0] = 0x40; // RTP version 1
        assert!(read(&other).is_none());
    }
}
