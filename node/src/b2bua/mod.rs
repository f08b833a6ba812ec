//! The B2BUA: every call is two legs, with the media engine anchored between them.

pub mod route;
