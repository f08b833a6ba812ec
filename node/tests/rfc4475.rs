//! RFC 4475 ("SIP Torture Test Messages") section 3: every message, run through our parser and
//! request validation, must be handled as the RFC prescribes. The fixtures and the prescribed
//! outcomes are in `tests/fixtures/` (see its README); `torture/conformance.rs` does the checks.
//! One test per message, named after it, so a failure names the message.

mod torture;

macro_rules! messages {
    ($($test:ident => $name:literal,)*) => {
        $(
            #[test]
            fn $test() {
                torture::conformance::check_named(4475, $name);
            }
        )*

        /// Every message of the manifest has a test above.
        #[test]
        fn every_manifest_message_has_a_test() {
            let tested = [$($name),*];
            let listed: Vec<String> = torture::entries(4475).into_iter().map(|e| e.name).collect();
            assert_eq!(listed, tested);
        }
    };
}

messages! {
    wsinv => "wsinv",
    intmeth => "intmeth",
    esc01 => "esc01",
    escnull => "escnull",
    esc02 => "esc02",
    lwsdisp => "lwsdisp",
    longreq => "longreq",
    dblreq => "dblreq",
    semiuri => "semiuri",
    transports => "transports",
    mpart01 => "mpart01",
    unreason => "unreason",
    noreason => "noreason",
    badinv01 => "badinv01",
    clerr => "clerr",
    ncl => "ncl",
    scalar02 => "scalar02",
    scalarlg => "scalarlg",
    quotbal => "quotbal",
    ltgtruri => "ltgtruri",
    lwsruri => "lwsruri",
    lwsstart => "lwsstart",
    trws => "trws",
    escruri => "escruri",
    baddate => "baddate",
    regbadct => "regbadct",
    badaspec => "badaspec",
    baddn => "baddn",
    badvers => "badvers",
    mismatch01 => "mismatch01",
    mismatch02 => "mismatch02",
    bigcode => "bigcode",
    badbranch => "badbranch",
    insuf => "insuf",
    unkscm => "unkscm",
    novelsc => "novelsc",
    unksm2 => "unksm2",
    bext01 => "bext01",
    invut => "invut",
    regaut01 => "regaut01",
    multi01 => "multi01",
    mcl01 => "mcl01",
    bcast => "bcast",
    zeromf => "zeromf",
    cparam01 => "cparam01",
    cparam02 => "cparam02",
    regescrt => "regescrt",
    sdp01 => "sdp01",
    inv2543 => "inv2543",
}
