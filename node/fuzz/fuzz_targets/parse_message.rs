//! Feeds arbitrary bytes to both framings of the SIP parser, then exercises every typed
//! accessor, validation, re-serialization and the error-response builder on whatever
//! parses. Nothing may panic; a message that parses must re-parse after serializing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tongdai_node::sip::parse::{error_response_for_raw, parse_datagram, parse_stream};
use tongdai_node::sip::{HeaderName, Message, SipHeaders, validate_request};

fuzz_target!(|data: &[u8]| {
    let _ = parse_stream(data, 65_535);
    match parse_datagram(data) {
        Ok(msg) => {
            let _ = msg.call_id();
            let _ = msg.cseq();
            let _ = msg.via();
            let _ = msg.hdr_from();
            let _ = msg.hdr_to();
            let _ = msg.contacts();
            let _ = msg.route();
            let _ = msg.record_route();
            let _ = msg.max_forwards();
            let _ = msg.expires();
            let _ = msg.option_tags(HeaderName::Require);
            if let Message::Request(req) = &msg {
                let _ = validate_request(req);
                let _ = req.uri.aor();
            }
            let bytes = msg.to_bytes();
            let again = parse_datagram(&bytes).expect("a parsed message must re-parse");
            assert_eq!(again.is_request(), msg.is_request());
        }
        Err(e) => {
            let _ = error_response_for_raw(data, e.status(), &e.reason());
        }
    }
});
