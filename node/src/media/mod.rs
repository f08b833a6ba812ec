//! The media engine: everything that touches RTP between the two legs of a call.
//!
//! This layer is sans-IO: [`rtp`] and [`rtcp`] parse and write packets in caller-owned
//! buffers, [`stats`] folds packet arrivals (with time passed in) into per-stream quality
//! figures, and [`ports`] hands out RTP/RTCP port numbers. Sockets and relay workers live
//! at the edge and are built on top of these.

pub mod ports;
pub mod rtcp;
pub mod rtp;
pub mod stats;
