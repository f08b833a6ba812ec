//! Property tests: any message we can build serializes to bytes that parse back to
//! the same message, on both datagram and stream framing.

use bytes::Bytes;
use proptest::prelude::*;
use tongdai_node::sip::{
    HeaderName, Headers, Message, Method, Request, Response, Uri, parse_datagram, parse_stream,
};

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9.!%*_+`'~-]{0,15}"
}

fn header_value() -> impl Strategy<Value = String> {
    // Visible UTF-8 text with inner spaces; no leading/trailing whitespace, no controls.
    "[!-~\u{e0}-\u{ff}]([ !-~\u{e0}-\u{ff}]{0,40}[!-~])?"
}

fn headers() -> impl Strategy<Value = Headers> {
    let name = prop_oneof![
        Just("Via".to_owned()),
        Just("To".to_owned()),
        Just("i".to_owned()),
        Just("Subject".to_owned()),
        token(),
    ];
    proptest::collection::vec((name, header_value()), 0..12).prop_map(|pairs| {
        let mut h = Headers::new();
        for (n, v) in pairs {
            let name = HeaderName::parse(&n);
            if name != HeaderName::ContentLength {
                h.push(name, v);
            }
        }
        h
    })
}

fn uri() -> impl Strategy<Value = Uri> {
    (
        proptest::option::of("[a-z0-9]{1,8}"),
        "[a-z][a-z0-9-]{0,10}(\\.[a-z]{2,5})?",
        proptest::option::of(1u16..),
    )
        .prop_map(|(user, host, port)| Uri::sip(user.as_deref(), &host, port).unwrap())
}

fn body() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..200).prop_map(Bytes::from)
}

fn message() -> impl Strategy<Value = Message> {
    let req = (token(), uri(), headers(), body()).prop_map(|(m, uri, headers, body)| {
        Message::Request(Request {
            method: Method::from_token(&m),
            uri,
            headers,
            body,
        })
    });
    let resp = (100u16..700, "[ !-~]{0,20}", headers(), body()).prop_map(
        |(status, reason, headers, body)| {
            Message::Response(Response {
                status,
                reason,
                headers,
                body,
            })
        },
    );
    prop_oneof![req, resp]
}

fn without_content_length(mut m: Message) -> Message {
    m.headers_mut().remove(&HeaderName::ContentLength);
    m
}

proptest! {
    #[test]
    fn serialize_then_parse_is_identity(msg in message()) {
        let bytes = msg.to_bytes();
        let parsed = parse_datagram(&bytes).expect("datagram parse");
        prop_assert_eq!(without_content_length(parsed.clone()), msg.clone());
        let len = msg.body().len().to_string();
        prop_assert_eq!(parsed.headers().get("Content-Length"), Some(len.as_str()));

        let mut stream = bytes.clone();
        stream.extend_from_slice(&bytes);
        let (first, used) = parse_stream(&stream, 1 << 20).expect("stream parse").expect("complete");
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(without_content_length(first), msg);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_datagram(&data);
        let _ = parse_stream(&data, 65535);
    }
}
