//! The media engine: everything that touches RTP between the two legs of a call.
//!
//! This layer is sans-IO: [`rtp`] and [`rtcp`] parse and write packets in caller-owned
//! buffers, [`stats`] folds packet arrivals (with time passed in) into per-stream quality
//! figures that [`mos`] turns into an estimated MOS, and [`ports`] hands out RTP/RTCP
//! port numbers. Sockets and relay workers live at the edge, built on top of these.

pub mod control;
pub mod dtmf;
pub mod engine;
pub mod g711;
pub mod mos;
pub mod playback;
pub mod ports;
pub mod recording;
pub mod relay;
pub mod rtcp;
pub mod rtp;
pub mod sdp;
pub mod stats;
pub mod wav;

#[cfg(test)]
mod tests;
