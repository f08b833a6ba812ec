//! RFC 5118 ("SIP Torture Test Messages for IPv6") section 4: every message, run through our
//! parser and request validation, must be handled as the RFC prescribes. The fixtures (in wire
//! form, see `tests/fixtures/README.md`) and the prescribed outcomes are in `tests/fixtures/`;
//! `torture/conformance.rs` does the checks. One test per message, named after it.

mod torture;

macro_rules! messages {
    ($($test:ident => $name:literal,)*) => {
        $(
            #[test]
            fn $test() {
                torture::conformance::check_named(5118, $name);
            }
        )*

        /// Every message of the manifest has a test above.
        #[test]
        fn every_manifest_message_has_a_test() {
            let tested = [$($name),*];
            let listed: Vec<String> = torture::entries(5118).into_iter().map(|e| e.name).collect();
            assert_eq!(listed, tested);
        }
    };
}

messages! {
    ipv6_good => "ipv6-good",
    ipv6_bad => "ipv6-bad",
    port_ambiguous => "port-ambiguous",
    port_unambiguous => "port-unambiguous",
    via_received_param_with_delim => "via-received-param-with-delim",
    via_received_param_no_delim => "via-received-param-no-delim",
    ipv6_in_sdp => "ipv6-in-sdp",
    mult_ip_in_header => "mult-ip-in-header",
    mult_ip_in_sdp => "mult-ip-in-sdp",
    ipv4_mapped_ipv6 => "ipv4-mapped-ipv6",
    ipv6_bug_abnf_3_colons => "ipv6-bug-abnf-3-colons",
    ipv6_correct_abnf_2_colons => "ipv6-correct-abnf-2-colons",
}
