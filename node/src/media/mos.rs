//! Estimated call quality: a simplified E-model (ITU-T G.107) from loss and delay to MOS.
//!
//! The relay cannot hear the call, so quality is estimated from what it measures: the
//! loss ratio from [`super::stats`] and a one-way delay (half the RTCP round trip plus the
//! assumed jitter-buffer depth). The result goes to the CDR and to per-tenant histograms.

use std::time::Duration;

/// A codec's equipment impairment and packet-loss robustness (ITU-T G.113 Appendix I).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodecImpairment {
    /// Ie: impairment at zero loss.
    pub ie: f64,
    /// Bpl: packet-loss robustness factor.
    pub bpl: f64,
}

impl CodecImpairment {
    /// G.711 with packet loss concealment (G.711 Appendix I): Ie 0, Bpl 25.1.
    pub const G711_PLC: Self = Self { ie: 0.0, bpl: 25.1 };
    /// G.711 without concealment: Ie 0, Bpl 4.3.
    pub const G711_NO_PLC: Self = Self { ie: 0.0, bpl: 4.3 };
}

/// R with G.107 default values for everything but delay and codec: Ro - Is = 93.2.
pub const R_DEFAULT: f64 = 93.2;

/// Estimated MOS-CQE with a simplified E-model (ITU-T G.107):
/// R = 93.2 - Id - Ie_eff, with
/// Id = 0.024 d + 0.11 (d - 177.3) H(d - 177.3) (d = one-way delay in ms; the common
/// Cole-Rosenbluth fit of G.107's delay impairment, echo assumed cancelled) and
/// Ie_eff = Ie + (95 - Ie) Ppl / (Ppl + Bpl) (random loss, BurstR = 1, Ppl in percent),
/// then MOS = 1 + 0.035 R + R (R - 60) (100 - R) 7e-6, clamped to 1.0..=4.5.
pub fn estimate_mos(codec: CodecImpairment, loss_ratio: f64, one_way_delay: Duration) -> f64 {
    let d = one_way_delay.as_secs_f64() * 1000.0;
    let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
    // A NaN ratio counts as no loss; no loss keeps 0/0 out when Bpl is 0.
    let ppl = if loss_ratio.is_nan() {
        0.0
    } else {
        (loss_ratio * 100.0).clamp(0.0, 100.0)
    };
    let ie_eff = if ppl == 0.0 {
        codec.ie
    } else {
        codec.ie + (95.0 - codec.ie) * ppl / (ppl + codec.bpl)
    };
    r_to_mos(R_DEFAULT - id - ie_eff)
}

/// G.107 Annex B mapping from the rating factor R to MOS.
pub fn r_to_mos(r: f64) -> f64 {
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mos_for_g711() {
        let mos0 = estimate_mos(CodecImpairment::G711_PLC, 0.0, Duration::ZERO);
        assert!((mos0 - 4.41).abs() < 0.01, "{mos0}");
        let mut previous = mos0;
        for pct in 1..=30 {
            let mos = estimate_mos(
                CodecImpairment::G711_PLC,
                f64::from(pct) / 100.0,
                Duration::ZERO,
            );
            assert!(
                mos < previous,
                "MOS must fall with loss: {pct}% gives {mos}"
            );
            previous = mos;
        }
        // Without concealment loss hurts more; delay hurts too.
        let loss = 0.02;
        assert!(
            estimate_mos(CodecImpairment::G711_NO_PLC, loss, Duration::ZERO)
                < estimate_mos(CodecImpairment::G711_PLC, loss, Duration::ZERO)
        );
        assert!(estimate_mos(CodecImpairment::G711_PLC, 0.0, Duration::from_millis(300)) < mos0);
        let no_robustness = CodecImpairment { ie: 0.0, bpl: 0.0 };
        assert_eq!(estimate_mos(no_robustness, 0.0, Duration::ZERO), mos0);
        assert_eq!(
            estimate_mos(CodecImpairment::G711_PLC, f64::NAN, Duration::ZERO),
            mos0
        );
        assert_eq!(r_to_mos(-5.0), 1.0);
        assert_eq!(r_to_mos(120.0), 4.5);
    }
}
