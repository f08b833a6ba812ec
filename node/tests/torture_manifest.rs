//! The torture-test fixtures and `fixtures/manifest.toml` agree with each other and with the
//! RFCs. Nothing here uses our SIP parser: these tests guard the yardstick the parser is
//! measured with (`rfc4475.rs`, `rfc5118.rs`).

mod torture;

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};
use torture::{Entry, Framing, Kind, Layer, Outcome, RawMessage, StreamExpect, Transport};

/// RFC 4475 section 3, in order: (section, name, title) as the RFC gives them.
const RFC4475_SECTION_3: &[(&str, &str, &str)] = &[
    ("3.1.1.1", "wsinv", "A Short Tortuous INVITE"),
    ("3.1.1.2", "intmeth", "Wide Range of Valid Characters"),
    ("3.1.1.3", "esc01", "Valid Use of the % Escaping Mechanism"),
    ("3.1.1.4", "escnull", "Escaped Nulls in URIs"),
    ("3.1.1.5", "esc02", "Use of % When It Is Not an Escape"),
    (
        "3.1.1.6",
        "lwsdisp",
        "Message with No LWS between Display Name and <",
    ),
    ("3.1.1.7", "longreq", "Long Values in Header Fields"),
    (
        "3.1.1.8",
        "dblreq",
        "Extra Trailing Octets in a UDP Datagram",
    ),
    (
        "3.1.1.9",
        "semiuri",
        "Semicolon-Separated Parameters in URI User Part",
    ),
    (
        "3.1.1.10",
        "transports",
        "Varied and Unknown Transport Types",
    ),
    ("3.1.1.11", "mpart01", "Multipart MIME Message"),
    ("3.1.1.12", "unreason", "Unusual Reason Phrase"),
    ("3.1.1.13", "noreason", "Empty Reason Phrase"),
    ("3.1.2.1", "badinv01", "Extraneous Header Field Separators"),
    ("3.1.2.2", "clerr", "Content Length Larger Than Message"),
    ("3.1.2.3", "ncl", "Negative Content-Length"),
    (
        "3.1.2.4",
        "scalar02",
        "Request Scalar Fields with Overlarge Values",
    ),
    (
        "3.1.2.5",
        "scalarlg",
        "Response Scalar Fields with Overlarge Values",
    ),
    (
        "3.1.2.6",
        "quotbal",
        "Unterminated Quoted String in Display Name",
    ),
    ("3.1.2.7", "ltgtruri", "<> Enclosing Request-URI"),
    (
        "3.1.2.8",
        "lwsruri",
        "Malformed SIP Request-URI (embedded LWS)",
    ),
    (
        "3.1.2.9",
        "lwsstart",
        "Multiple SP Separating Request-Line Elements",
    ),
    ("3.1.2.10", "trws", "SP Characters at End of Request-Line"),
    ("3.1.2.11", "escruri", "Escaped Headers in SIP Request-URI"),
    (
        "3.1.2.12",
        "baddate",
        "Invalid Time Zone in Date Header Field",
    ),
    (
        "3.1.2.13",
        "regbadct",
        "Failure to Enclose name-addr URI in <>",
    ),
    ("3.1.2.14", "badaspec", "Spaces within addr-spec"),
    ("3.1.2.15", "baddn", "Non-token Characters in Display Name"),
    ("3.1.2.16", "badvers", "Unknown Protocol Version"),
    (
        "3.1.2.17",
        "mismatch01",
        "Start Line and CSeq Method Mismatch",
    ),
    (
        "3.1.2.18",
        "mismatch02",
        "Unknown Method with CSeq Method Mismatch",
    ),
    ("3.1.2.19", "bigcode", "Overlarge Response Code"),
    ("3.2.1", "badbranch", "Missing Transaction Identifier"),
    ("3.3.1", "insuf", "Missing Required Header Fields"),
    ("3.3.2", "unkscm", "Request-URI with Unknown Scheme"),
    (
        "3.3.3",
        "novelsc",
        "Request-URI with Known but Atypical Scheme",
    ),
    ("3.3.4", "unksm2", "Unknown URI Schemes in Header Fields"),
    ("3.3.5", "bext01", "Proxy-Require and Require"),
    ("3.3.6", "invut", "Unknown Content-Type"),
    ("3.3.7", "regaut01", "Unknown Authorization Scheme"),
    (
        "3.3.8",
        "multi01",
        "Multiple Values in Single Value Required Fields",
    ),
    ("3.3.9", "mcl01", "Multiple Content-Length Values"),
    (
        "3.3.10",
        "bcast",
        "200 OK Response with Broadcast Via Header Field Value",
    ),
    ("3.3.11", "zeromf", "Max-Forwards of Zero"),
    (
        "3.3.12",
        "cparam01",
        "REGISTER with a Contact Header Parameter",
    ),
    ("3.3.13", "cparam02", "REGISTER with a url-parameter"),
    ("3.3.14", "regescrt", "REGISTER with a URL Escaped Header"),
    ("3.3.15", "sdp01", "Unacceptable Accept Offering"),
    ("3.4.1", "inv2543", "INVITE with RFC 2543 Syntax"),
];

/// RFC 5118 section 4, in order. Sections 4.5 and 4.10 each contrast two messages.
const RFC5118_SECTION_4: &[(&str, &str)] = &[
    ("4.1", "ipv6-good"),
    ("4.2", "ipv6-bad"),
    ("4.3", "port-ambiguous"),
    ("4.4", "port-unambiguous"),
    ("4.5", "via-received-param-with-delim"),
    ("4.5", "via-received-param-no-delim"),
    ("4.6", "ipv6-in-sdp"),
    ("4.7", "mult-ip-in-header"),
    ("4.8", "mult-ip-in-sdp"),
    ("4.9", "ipv4-mapped-ipv6"),
    ("4.10", "ipv6-bug-abnf-3-colons"),
    ("4.10", "ipv6-correct-abnf-2-colons"),
];

/// SHA-256 of each RFC 4475 message as decoded from the RFC's Appendix A archive. Pins the
/// bytes against editors and tools that strip trailing spaces, convert line ends or re-encode.
const RFC4475_ARCHIVE_SHA256: &[(&str, &str)] = &[
    (
        "badaspec",
        "f8f6e2f4247287b0be6adb5ac222a6db4759395e44d27d2ddb9b39393e94867e",
    ),
    (
        "badbranch",
        "cb049c727f16b5ec49e822f9e8b7d0ee20ca2d20ffb50baecd0b411a5e64fa7d",
    ),
    (
        "baddate",
        "1208a6e3e0c8a8c33a06a1f3733d158413cb72e58c379d094c4ecea11e9d4c28",
    ),
    (
        "baddn",
        "9d9428e8017092f194ec11077ba6865c251308cdfd7fd9db6a993b28e5748951",
    ),
    (
        "badinv01",
        "9ee2b88f2e0b5a9eeb9bf729b6177f0a0c7d0b5e6c84be593e0480d7962f3ab8",
    ),
    (
        "badvers",
        "037d702d19e934bfeebbd2609050d7d54928d590cf90c78f3914522771dd8e03",
    ),
    (
        "bcast",
        "073637c63597199179cf5fc91b980b2d530c066a0048ea3b908772def57b4c36",
    ),
    (
        "bext01",
        "57181987c02c4f5752b7aa8c2847311f6184216ce7621e40303015949e70761c",
    ),
    (
        "bigcode",
        "f79450070975da54c3525c9a5cbe75bae3c9d8cb92eba609772c26f66f225c2e",
    ),
    (
        "clerr",
        "d9da629086a38df433438fb0fb19a8730f34516f049a5520dd0cac3285485290",
    ),
    (
        "cparam01",
        "dfa6b5cdb289adc694b9b7e103ebfa7a2167335c46e5dc9de67055021910ae1c",
    ),
    (
        "cparam02",
        "e93574215bd1d804bb46cc15ca6176b567def7ea1b15f72ab2c2dcf598af465a",
    ),
    (
        "dblreq",
        "a6be48426565c2a705389c4ce2ea17e57b891cb13f80490a2cb9392c797b46ef",
    ),
    (
        "esc01",
        "be3a316d4ce5f69cad474646191e390dd4b50fc8371e44b5197fe1237781973e",
    ),
    (
        "esc02",
        "9a9c59449f00327b02071feafc8e5c2a261c98c818044167894cc17809a12199",
    ),
    (
        "escnull",
        "263fe2ecd12a5ccbb6c67b3174e9211d11da9b600e7d69666a86d2ee42873e90",
    ),
    (
        "escruri",
        "c3cf30af13a9d107829cc105effd79355f1139c6ecc683a048b4c27951f8f416",
    ),
    (
        "insuf",
        "1e3efd9f3b238c6351ba12bc7eb46d843f2761b5d4a6b82b63bffdf07f2c5aee",
    ),
    (
        "intmeth",
        "b957a8292c1c0a9851fe94705b90f94320738f43aacde64998e401f742ef688d",
    ),
    (
        "inv2543",
        "76fac8afe22dee49ea696b511621946694897ac7030fc5d07f57c8b487ce0521",
    ),
    (
        "invut",
        "9b39e824947df46f90f824cd308fb3c118f548d94637f581101e355b381a0d92",
    ),
    (
        "longreq",
        "185739292bc676760e5b1cca77c87705aa570240171c506ad76f8c35af0ecdaa",
    ),
    (
        "ltgtruri",
        "bcacb2dc17610e8cc8f9b8b0e3d6ee65ab473f93787a03bbd33579e1cea473df",
    ),
    (
        "lwsdisp",
        "d1b36b6316c12824f6f04bf6b1fd1f021cade9b74871693b9c3474cd9fa7f4e6",
    ),
    (
        "lwsruri",
        "3e22ceeca585ad23cc180208e2dad94e0a5aa4bb877a61cac443aa927f758b9e",
    ),
    (
        "lwsstart",
        "f884e5626c6c5b1210cfc4a3540b8a28bd52939cff092f3f0c5c971e032adb0e",
    ),
    (
        "mcl01",
        "887191619bf003b7e87399200b5cf4c3b5397344dbf70288ad5e23bd157b7fe4",
    ),
    (
        "mismatch01",
        "a2c285636e451e75420da0cc62ee55ca3e398827008418befbfb078726bf0793",
    ),
    (
        "mismatch02",
        "01b287f9a9c492f7f57405c36c8a2af0e2393896ed2d25fb92b502f2a6722bc4",
    ),
    (
        "mpart01",
        "92147c8e24997bac59629e1b163767697d0d6d499af87f89e325d69968bec3ba",
    ),
    (
        "multi01",
        "d156ab12105b4bfd8a6498de6f7195087058162b8cda1606169855b722411791",
    ),
    (
        "ncl",
        "7ea6538edc1f054fdb6cd1c821040460cffca3cb682fa2e8e2a502d92170b4c2",
    ),
    (
        "noreason",
        "07e11e470a69fffa3674de805e5165d1351a9439a91045ee70c9570ea24ab4fe",
    ),
    (
        "novelsc",
        "9a50a7343fcf685e77c4d0f477138a28f32a41c75aa566d200f3df210b01e648",
    ),
    (
        "quotbal",
        "e61978a2ea359fc666f0336fe4dbc623447532280e3273ea98119b3d3f788c84",
    ),
    (
        "regaut01",
        "885ba0488872cfc04a3c7622854b8381955a5ee890745d6010834e3731a73faa",
    ),
    (
        "regbadct",
        "575d27530275814c1c98be164808fac89a0e2b4fc899dadcd97e6ba499437bda",
    ),
    (
        "regescrt",
        "dab4087c133348b06fd7b3c4c7ef15094f8754e265e4e8c2137bb3ecda2ef477",
    ),
    (
        "scalar02",
        "53158177326568e9964bce5dcfac27a2bf8a90953bbc03f6c5e2775864a97e4b",
    ),
    (
        "scalarlg",
        "0957eca31737e3592eb1418bb41e9f5219278a78ff420111620d7fb60175b551",
    ),
    (
        "sdp01",
        "497c5f1ced6c7b579b48075e2dca919ce9b819a735964128a6e744a3a0b9e57f",
    ),
    (
        "semiuri",
        "87bbaed6b4b354dbd3c5c7a20e66686303c63e43a0aa19b89de1ac75231611a2",
    ),
    (
        "transports",
        "33b4553a3b9418121b099ff07882535151edd6a1e81898c63a916aad2cbf90bc",
    ),
    (
        "trws",
        "64ae20694026e28c10746b57386b7fd1276de02b6f8d42d418070e87d6f4499f",
    ),
    (
        "unkscm",
        "81be1a6a566c7ab52fe1c58c4a75440dfd697ad04c5e09fa71340de7da7b8bbb",
    ),
    (
        "unksm2",
        "f6914409ced613ef5eb56e264d2f096dac26ab9e397d6a638934d2027f1f6acb",
    ),
    (
        "unreason",
        "4f939d6ebf4817eea70f011d3209e83732872ffc20ffd304b244084dc392f4d7",
    ),
    (
        "wsinv",
        "d6f6cdee99cd0a1f8e3d9a0fdd67c877700e19ab86d8186dada06f61260e3e61",
    ),
    (
        "zeromf",
        "50954ef47acca4f9f5263ded06246d06dee4e2ee508a8d284191795d7fddf365",
    ),
];

/// SHA-256 of each message in RFC 5118's Appendix A archive (`rfc5118/archive/<name>`).
const RFC5118_ARCHIVE_SHA256: &[(&str, &str)] = &[
    (
        "ipv4-mapped-ipv6",
        "b3d7df025b6465461741c3788fa3b48af25b08d6a2fdb59ded815cc0afc04a68",
    ),
    (
        "ipv6-bad",
        "f6ffa0b2e664d05dbecde6bd7eb6fd71a9f01d43a3a0d3e084766c6240be4972",
    ),
    (
        "ipv6-bug-abnf-3-colons",
        "e542604dca3aed5c346a549c1f692aecf98a12353b38283be3e199664abeb43e",
    ),
    (
        "ipv6-correct-abnf-2-colons",
        "6a8c09976009aab0159cf1b8cc3e2964b3853557102b5b86bf2b6b2c48c0779e",
    ),
    (
        "ipv6-good",
        "80654d05559d5bda7d584b39e0f4dbf69b23189cb140754ef889a4996a3505ed",
    ),
    (
        "ipv6-in-sdp",
        "c09ab30a92e790ecd261aadbb3876f8043307bffec3103f5add052d64a125532",
    ),
    (
        "mult-ip-in-header",
        "ace698f6827e940812cfe26c48960f9069b02291b0022b0777cf00f37405f83a",
    ),
    (
        "mult-ip-in-sdp",
        "c50fb1a29fdf4f0c3c12cf9cf5b490df1bb86d6dfacf7bc807e2c3e7e8660013",
    ),
    (
        "port-ambiguous",
        "e1925cfd89436c36025fd21d144b7788cb988bfd752498cf767e3303426f2e7d",
    ),
    (
        "port-unambiguous",
        "be3a4dbac87b1cdabde97595d117773e3864ffd2ff7ab645bfd5773e280bcd4e",
    ),
    (
        "via-received-param-no-delim",
        "45f233fd536e7d4d9f47be5098992cd912394a80460dd6b16979f61a713b9dd9",
    ),
    (
        "via-received-param-with-delim",
        "568255f70f186f7d09fe437a662bb32a7b14285c5243222a1a401004b7e6ba80",
    ),
];

/// RFC 5118 messages whose Content-Length the wire form corrects: (name, RFC value, wire value).
const RFC5118_CORRECTED_CONTENT_LENGTH: &[(&str, usize, usize)] = &[
    ("ipv6-in-sdp", 268, 251),
    ("mult-ip-in-sdp", 181, 189),
    ("ipv4-mapped-ipv6", 236, 245),
];

fn all_entries() -> Vec<Entry> {
    torture::load_manifest().message
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn dat_files(dir: &str) -> BTreeSet<String> {
    let path = torture::fixtures_dir().join(dir);
    let mut files = BTreeSet::new();
    for entry in std::fs::read_dir(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
        let entry = entry.expect("directory entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().expect("file type").is_dir() {
            assert_eq!(name, "archive", "unexpected directory {dir}/{name}");
            continue;
        }
        assert!(
            name.ends_with(".dat"),
            "{dir}/{name}: fixture files are named <rfc name>.dat"
        );
        files.insert(format!("{dir}/{name}"));
    }
    files
}

fn content_lengths(raw: &RawMessage<'_>) -> Vec<String> {
    raw.values("content-length")
}

#[test]
fn every_fixture_file_is_in_the_manifest_and_every_entry_has_its_file() {
    let on_disk: BTreeSet<String> = dat_files("rfc4475")
        .into_iter()
        .chain(dat_files("rfc5118"))
        .collect();
    let listed: BTreeSet<String> = all_entries().into_iter().map(|e| e.file).collect();
    let unlisted: Vec<_> = on_disk.difference(&listed).collect();
    let missing: Vec<_> = listed.difference(&on_disk).collect();
    assert!(
        unlisted.is_empty(),
        "fixtures not in manifest.toml: {unlisted:?}"
    );
    assert!(
        missing.is_empty(),
        "manifest.toml entries without a file: {missing:?}"
    );
    assert_eq!(
        on_disk.len(),
        61,
        "49 RFC 4475 messages + 12 RFC 5118 messages"
    );
}

#[test]
fn manifest_has_every_rfc4475_section_3_message_in_order() {
    let got: Vec<(String, String, String)> = torture::entries(4475)
        .into_iter()
        .map(|e| (e.section, e.name, e.title))
        .collect();
    let want: Vec<(String, String, String)> = RFC4475_SECTION_3
        .iter()
        .map(|(s, n, t)| ((*s).to_owned(), (*n).to_owned(), (*t).to_owned()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn manifest_has_every_rfc5118_section_4_message_in_order() {
    let got: Vec<(String, String)> = torture::entries(5118)
        .into_iter()
        .map(|e| (e.section, e.name))
        .collect();
    let want: Vec<(String, String)> = RFC5118_SECTION_4
        .iter()
        .map(|(s, n)| ((*s).to_owned(), (*n).to_owned()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn rfc4475_fixtures_are_the_bytes_of_the_rfc_archive() {
    for (name, digest) in RFC4475_ARCHIVE_SHA256 {
        let path = torture::fixtures_dir().join(format!("rfc4475/{name}.dat"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            sha256_hex(&bytes),
            *digest,
            "{name}.dat differs from RFC 4475's archive"
        );
    }
    assert_eq!(RFC4475_ARCHIVE_SHA256.len(), RFC4475_SECTION_3.len());
}

#[test]
fn rfc5118_wire_form_is_derived_from_the_archive() {
    for (name, digest) in RFC5118_ARCHIVE_SHA256 {
        let dir = torture::fixtures_dir().join("rfc5118");
        let archive = std::fs::read(dir.join("archive").join(name)).expect("archive file");
        assert_eq!(
            sha256_hex(&archive),
            *digest,
            "archive/{name} differs from RFC 5118's"
        );
        assert!(
            !archive.contains(&b'\r'),
            "archive/{name}: the RFC archive has bare LF only"
        );
        let wire = std::fs::read(dir.join(format!("{name}.dat"))).expect("wire file");
        assert!(
            torture::rfc5118_wire_form(&archive) == wire,
            "{name}.dat is not the documented wire form of archive/{name}"
        );

        let declared = |bytes: &[u8]| -> String {
            let raw = RawMessage::scan(bytes);
            content_lengths(&raw).join(",")
        };
        let archive_lf_to_crlf: Vec<u8> = archive
            .iter()
            .flat_map(|&b| {
                if b == b'\n' {
                    vec![b'\r', b'\n']
                } else {
                    vec![b]
                }
            })
            .collect();
        let (rfc_cl, wire_cl) = (declared(&archive_lf_to_crlf), declared(&wire));
        match RFC5118_CORRECTED_CONTENT_LENGTH
            .iter()
            .find(|(n, _, _)| n == name)
        {
            Some((_, rfc, fixed)) => {
                assert_eq!(rfc_cl, rfc.to_string(), "{name}: RFC Content-Length");
                assert_eq!(
                    wire_cl,
                    fixed.to_string(),
                    "{name}: corrected Content-Length"
                );
            }
            None => assert_eq!(rfc_cl, wire_cl, "{name}: Content-Length must be the RFC's"),
        }
    }
    assert_eq!(RFC5118_ARCHIVE_SHA256.len(), RFC5118_SECTION_4.len());
}

#[test]
fn manifest_entries_are_consistent() {
    for e in all_entries() {
        let label = e.label();
        assert_eq!(
            e.file,
            format!("rfc{}/{}.dat", e.rfc, e.name),
            "{label}: file name"
        );
        assert!(!e.rfc_says.trim().is_empty(), "{label}: rfc_says is empty");
        let raw_bytes = e.bytes();
        let raw = RawMessage::scan(&raw_bytes);
        let is_response = raw.start_line.starts_with(b"SIP/");
        assert_eq!(
            e.kind,
            if is_response {
                Kind::Response
            } else {
                Kind::Request
            },
            "{label}: kind disagrees with the start line"
        );
        match e.outcome {
            Outcome::Parse => {
                assert!(e.facts.is_some(), "{label}: a parse outcome needs facts");
                assert!(
                    e.status.is_none() && e.layer.is_none(),
                    "{label}: parse has no status/layer"
                );
                assert!(
                    !e.liberal_accept,
                    "{label}: liberal_accept is for reject outcomes"
                );
            }
            Outcome::Reject => {
                assert_eq!(
                    e.kind,
                    Kind::Request,
                    "{label}: only a request can be answered"
                );
                assert!(e.status.is_some(), "{label}: reject needs a status");
                assert!(
                    matches!(e.layer, Some(Layer::Parser | Layer::Either)),
                    "{label}: reject needs layer parser or either"
                );
                assert!(
                    e.app_status.is_none(),
                    "{label}: app_status is for parse outcomes"
                );
            }
            Outcome::Drop => {
                assert_eq!(
                    e.kind,
                    Kind::Response,
                    "{label}: the RFC drops responses only"
                );
                assert!(e.layer.is_some(), "{label}: drop needs a layer");
                assert!(
                    e.status.is_none(),
                    "{label}: nothing is sent for a dropped message"
                );
                assert_eq!(
                    e.layer == Some(Layer::Application),
                    e.facts.is_some(),
                    "{label}: facts exactly when the parser must accept a dropped message"
                );
            }
        }
        for s in e.reject_statuses().into_iter().chain(e.app_statuses()) {
            assert!(
                (400..700).contains(&s),
                "{label}: {s} is not an error status"
            );
        }
        if e.stream_consumed.is_some() {
            assert_eq!(
                e.stream,
                Some(StreamExpect::Complete),
                "{label}: stream_consumed"
            );
        }
        if e.stream == Some(StreamExpect::Complete) {
            assert!(
                matches!(e.framing, Framing::Exact | Framing::Trailing),
                "{label}: a complete stream message needs a usable Content-Length"
            );
        }
        match e.transport_basis.as_str() {
            "RFC text" => {}
            "top Via" => {
                let want = match e.transport {
                    Transport::Udp => "UDP",
                    Transport::Tcp => "TCP",
                    Transport::Tls => "TLS",
                };
                assert_eq!(
                    raw.top_via_transport().as_deref(),
                    Some(want),
                    "{label}: transport disagrees with the top Via"
                );
            }
            other => panic!("{label}: transport_basis {other:?}"),
        }
    }
}

#[test]
fn content_length_is_what_the_manifest_says() {
    for e in all_entries() {
        let label = e.label();
        let bytes = e.bytes();
        let raw = RawMessage::scan(&bytes);
        let cls = content_lengths(&raw);
        if e.framing == Framing::Unterminated {
            assert!(
                raw.body_start.is_none(),
                "{label}: header section is terminated"
            );
            continue;
        }
        let body_start = raw
            .body_start
            .unwrap_or_else(|| panic!("{label}: no empty line ends the header section"));
        let available = bytes.len() - body_start;
        let single = || -> i64 {
            assert_eq!(
                cls.len(),
                1,
                "{label}: expected one Content-Length, got {cls:?}"
            );
            cls[0]
                .parse()
                .unwrap_or_else(|_| panic!("{label}: Content-Length {:?}", cls[0]))
        };
        match e.framing {
            Framing::Exact => assert_eq!(single(), available as i64, "{label}: Content-Length"),
            Framing::Trailing => assert!(single() < available as i64, "{label}: no trailing bytes"),
            Framing::Short => assert!(single() > available as i64, "{label}: not short"),
            Framing::Negative => assert!(single() < 0, "{label}: not negative"),
            Framing::Conflicting => {
                let distinct: BTreeSet<&String> = cls.iter().collect();
                assert!(
                    distinct.len() > 1,
                    "{label}: Content-Length values agree: {cls:?}"
                );
            }
            Framing::Absent => assert!(cls.is_empty(), "{label}: has Content-Length {cls:?}"),
            Framing::Unterminated => unreachable!(),
        }
        if let Some(facts) = &e.facts {
            let expected = match e.framing {
                Framing::Exact | Framing::Absent => available,
                Framing::Trailing => usize::try_from(single()).expect("non-negative"),
                other => panic!("{label}: facts on a message with framing {other:?}"),
            };
            assert_eq!(facts.body_len, expected, "{label}: facts.body_len");
        }
    }
}

#[test]
fn header_sections_are_crlf_terminated() {
    for e in all_entries() {
        let bytes = e.bytes();
        let raw = RawMessage::scan(&bytes);
        let head_end = raw.body_start.unwrap_or(bytes.len());
        for (i, &b) in bytes[..head_end].iter().enumerate() {
            match b {
                b'\n' => assert!(
                    i > 0 && bytes[i - 1] == b'\r',
                    "{}: bare LF at {i}",
                    e.label()
                ),
                b'\r' => assert_eq!(
                    bytes.get(i + 1),
                    Some(&b'\n'),
                    "{}: bare CR at {i}",
                    e.label()
                ),
                _ => {}
            }
        }
        assert!(
            bytes.ends_with(b"\r\n"),
            "{}: last line is not terminated",
            e.label()
        );
    }
}

/// The facts the parser harness asserts are checked here against a naive reading of the bytes,
/// so a wrong expectation shows up as a manifest error rather than as a parser bug.
#[test]
fn facts_agree_with_the_bytes() {
    for e in all_entries() {
        let Some(f) = &e.facts else { continue };
        let label = e.label();
        let bytes = e.bytes();
        let raw = RawMessage::scan(&bytes);
        let start = String::from_utf8(raw.start_line.to_vec()).expect("UTF-8 start line");
        match e.kind {
            Kind::Request => {
                let parts: Vec<&str> = start.split(' ').collect();
                assert_eq!(parts.len(), 3, "{label}: request line");
                assert_eq!(Some(parts[0]), f.method.as_deref(), "{label}: method");
                assert_eq!(
                    Some(parts[1]),
                    f.request_uri.as_deref(),
                    "{label}: Request-URI"
                );
            }
            Kind::Response => {
                let mut parts = start.splitn(3, ' ');
                assert_eq!(parts.next(), Some("SIP/2.0"), "{label}: version");
                let code: u16 = parts
                    .next()
                    .and_then(|c| c.parse().ok())
                    .expect("status code");
                assert_eq!(Some(code), f.status, "{label}: status");
                assert_eq!(parts.next(), f.reason.as_deref(), "{label}: reason");
            }
        }
        assert_eq!(
            raw.values("call-id"),
            vec![f.call_id.clone()],
            "{label}: Call-ID"
        );
        let cseq = raw.values("cseq");
        assert_eq!(cseq.len(), 1, "{label}: CSeq");
        let (seq, method) = cseq[0].split_once(' ').expect("CSeq has two parts");
        assert_eq!(
            seq.parse::<u32>().ok(),
            Some(f.cseq_seq),
            "{label}: CSeq number"
        );
        assert_eq!(method, f.cseq_method, "{label}: CSeq method");
        let vias: Vec<String> = raw
            .values("via")
            .iter()
            .flat_map(|v| v.split(',').map(str::to_owned).collect::<Vec<_>>())
            .collect();
        assert_eq!(vias.len(), f.via_count, "{label}: Via values");
        for h in &f.header {
            assert_eq!(
                raw.values(&h.name).first(),
                Some(&torture::fold_lws(&h.value)),
                "{label}: header {}",
                h.name
            );
        }
        for h in &f.header_lines {
            assert_eq!(
                raw.values(&h.name).len(),
                h.count,
                "{label}: {} lines",
                h.name
            );
        }
        for list in [&f.via_transports, &f.via_hosts, &f.via_received] {
            assert!(
                list.is_empty() || list.len() == f.via_count,
                "{label}: per-Via list length"
            );
        }
        if let Some(user) = &f.uri_user {
            let uri = f
                .request_uri
                .as_deref()
                .expect("uri_user needs request_uri");
            assert!(
                uri.contains(&format!(":{user}")),
                "{label}: uri_user not in the URI"
            );
        }
        if f.uri_port.is_some() {
            assert!(!f.uri_port_absent, "{label}: uri_port and uri_port_absent");
        }
    }
}

#[test]
fn reject_and_drop_outcomes_name_a_layer_that_can_see_the_fault() {
    // A framing fault can only be seen by the parser: once it has cut a datagram into a
    // message, validate_request has no way to know the body was truncated or padded.
    for e in all_entries() {
        let framing_fault = matches!(
            e.framing,
            Framing::Short | Framing::Negative | Framing::Conflicting | Framing::Unterminated
        );
        if framing_fault {
            assert_eq!(
                e.layer,
                Some(Layer::Parser),
                "{}: framing faults are the parser's",
                e.label()
            );
            assert_ne!(e.outcome, Outcome::Parse, "{}", e.label());
        }
    }
}
