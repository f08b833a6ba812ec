//! G.711 companding (ITU-T G.711): μ-law (PCMU, payload type 0) and A-law (PCMA, payload
//! type 8) to and from 16-bit linear PCM.
//!
//! Decoding goes through 256-entry tables built at compile time, so the recorder and the
//! in-band DTMF detector pay one array lookup per sample. Encoding is the segment search
//! of the reference algorithm; it runs for prompts (once, at load) and in tests.

/// The two G.711 laws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Law {
    /// μ-law, RTP payload type 0 (`PCMU/8000`).
    Ulaw,
    /// A-law, RTP payload type 8 (`PCMA/8000`).
    Alaw,
}

impl Law {
    /// The static RTP payload type of this law.
    pub fn payload_type(self) -> u8 {
        match self {
            Law::Ulaw => 0,
            Law::Alaw => 8,
        }
    }

    /// The law of a static RTP payload type, if it is one of the two.
    pub fn from_payload_type(pt: u8) -> Option<Law> {
        match pt {
            0 => Some(Law::Ulaw),
            8 => Some(Law::Alaw),
            _ => None,
        }
    }

    /// The encoded byte of digital silence (linear 0).
    pub fn silence(self) -> u8 {
        match self {
            Law::Ulaw => 0xFF,
            Law::Alaw => 0xD5,
        }
    }

    /// Decodes one encoded byte.
    #[inline]
    pub fn decode(self, byte: u8) -> i16 {
        match self {
            Law::Ulaw => ULAW_TO_LINEAR[byte as usize],
            Law::Alaw => ALAW_TO_LINEAR[byte as usize],
        }
    }

    /// Encodes one linear sample.
    #[inline]
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Law::Ulaw => linear_to_ulaw(sample),
            Law::Alaw => linear_to_alaw(sample),
        }
    }
}

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32635;

/// μ-law encoding of one linear sample (G.711 with the usual 0x84 bias).
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(ULAW_CLIP) + ULAW_BIAS;
    // The segment is the position of the highest set bit above bit 7.
    let exponent = (31 - (s as u32).leading_zeros()).saturating_sub(7).min(7) as i32;
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// Linear value of one μ-law byte.
pub const fn ulaw_to_linear(byte: u8) -> i16 {
    let u = !byte;
    let sign = u & 0x80;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if sign != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// A-law encoding of one linear sample.
pub fn linear_to_alaw(sample: i16) -> u8 {
    // A-law works on 13-bit magnitudes.
    let s = i32::from(sample) >> 3;
    let (sign, magnitude) = if s >= 0 { (0x80, s) } else { (0x00, -s - 1) };
    let magnitude = magnitude.min(0x0FFF);
    let encoded = if magnitude < 32 {
        (magnitude >> 1) as u8
    } else {
        let segment = (31 - (magnitude as u32).leading_zeros()) as i32 - 4; // 1..=7
        ((segment << 4) | ((magnitude >> segment) & 0x0F)) as u8
    };
    (encoded | sign) ^ 0x55
}

/// Linear value of one A-law byte.
pub const fn alaw_to_linear(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let sign = a & 0x80;
    let segment = ((a >> 4) & 0x07) as i32;
    let mantissa = (a & 0x0F) as i32;
    let magnitude = if segment == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (segment - 1)
    };
    if sign != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn table(alaw: bool) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if alaw {
            alaw_to_linear(i as u8)
        } else {
            ulaw_to_linear(i as u8)
        };
        i += 1;
    }
    t
}

static ULAW_TO_LINEAR: [i16; 256] = table(false);
static ALAW_TO_LINEAR: [i16; 256] = table(true);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_decodes_to_zero_or_the_smallest_step() {
        assert_eq!(Law::Ulaw.decode(Law::Ulaw.silence()), 0);
        assert_eq!(Law::Alaw.decode(Law::Alaw.silence()).abs(), 8);
        assert_eq!(Law::Ulaw.encode(0), 0xFF);
        assert_eq!(Law::Alaw.encode(0), 0xD5);
    }

    #[test]
    fn every_code_survives_a_decode_encode_round_trip() {
        for law in [Law::Ulaw, Law::Alaw] {
            for byte in 0..=255u8 {
                let linear = law.decode(byte);
                let again = law.encode(linear);
                // μ-law has two codes for zero (0x7F and 0xFF); both decode to 0.
                if law == Law::Ulaw && linear == 0 {
                    assert_eq!(again, 0xFF);
                } else {
                    assert_eq!(again, byte, "{law:?} code {byte:#04x} -> {linear}");
                }
            }
        }
    }

    #[test]
    fn known_reference_values() {
        // Extremes of the reference tables.
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
    }

    #[test]
    fn quantisation_error_is_bounded_by_the_segment_step() {
        for law in [Law::Ulaw, Law::Alaw] {
            for sample in (i16::MIN..=i16::MAX).step_by(7) {
                let back = law.decode(law.encode(sample));
                let err = (i32::from(back) - i32::from(sample)).abs();
                // Half the largest step (1024) bounds the error, plus clipping at the top.
                let bound = (i32::from(sample).abs() / 16).max(16) + 300;
                assert!(err <= bound, "{law:?} {sample} -> {back}");
            }
        }
    }
}
