//! Runs one torture-test message through `tongdai_node::sip` and checks that it is handled as
//! its manifest entry (that is, the RFC) prescribes. See `tests/fixtures/manifest.toml` for the
//! meaning of each field.

use tongdai_node::sip::{Message, SipHeaders, parse_datagram, parse_stream, validate_request};

use crate::torture::{self, Entry, Facts, Framing, Kind, Layer, Outcome, RawMessage, StreamExpect};

/// The stream buffer limit the harness gives `parse_stream`: the datagram maximum, far above
/// every fixture.
const STREAM_LIMIT: usize = 65_535;

/// Checks the message called `name` of RFC `rfc`; panics with every deviation found.
pub fn check_named(rfc: u32, name: &str) {
    let entry = torture::entries(rfc)
        .into_iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("rfc{rfc} {name} is not in manifest.toml"));
    let mut findings = Findings::default();
    check(&entry, &mut findings);
    for line in &findings.report {
        println!("{}: {line}", entry.label());
    }
    assert!(
        findings.failures.is_empty(),
        "{} ({}) is not handled as the RFC says:\n  - {}\nRFC: {}",
        entry.label(),
        entry.title,
        findings.failures.join("\n  - "),
        entry.rfc_says.trim()
    );
}

#[derive(Default)]
struct Findings {
    failures: Vec<String>,
    report: Vec<String>,
}

impl Findings {
    fn fail(&mut self, msg: impl Into<String>) {
        self.failures.push(msg.into());
    }
    fn note(&mut self, msg: impl Into<String>) {
        self.report.push(msg.into());
    }
    /// Records a failure when `got != want`.
    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, got: T, want: T) {
        if got != want {
            self.fail(format!("{what}: expected {want:?}, got {got:?}"));
        }
    }
}

fn check(e: &Entry, f: &mut Findings) {
    let bytes = e.bytes();
    match e.outcome {
        Outcome::Parse => check_accepted(e, &bytes, f),
        Outcome::Reject => {
            check_rejected(e, &bytes, e.layer, "", f);
            if e.framing == Framing::Unterminated {
                // The archive's copy lacks the empty line; the fault the RFC describes must
                // still be found once the header section is terminated.
                let mut terminated = bytes.clone();
                terminated.extend_from_slice(b"\r\n");
                // That fault is in a header value, so either layer may find it.
                let context = "with its header section terminated: ";
                check_rejected(e, &terminated, Some(Layer::Either), context, f);
            }
        }
        Outcome::Drop => check_dropped(e, &bytes, f),
    }
    if let Some(expect) = e.stream {
        check_stream(e, &bytes, expect, f);
    }
}

/// `parse` outcome: the parser accepts, the facts hold, validation answers as the RFC allows
/// and the message survives serialization.
fn check_accepted(e: &Entry, bytes: &[u8], f: &mut Findings) {
    let msg = match parse_datagram(bytes) {
        Ok(msg) => msg,
        Err(err) => {
            f.fail(format!(
                "parse_datagram refused a well-formed message: {err} (would answer {})",
                err.status()
            ));
            return;
        }
    };
    if let Some(facts) = &e.facts {
        check_facts(e, bytes, &msg, facts, f);
    }
    if let Message::Request(req) = &msg {
        let allowed = e.app_statuses();
        match validate_request(req) {
            Ok(()) => f.note("accepted by parse_datagram and validate_request"),
            Err(r) if allowed.contains(&r.status) => f.note(format!(
                "accepted by parse_datagram; validate_request answers {} {} (RFC: {allowed:?})",
                r.status, r.reason
            )),
            Err(r) => f.fail(format!(
                "validate_request refused a valid request with {} {}{}",
                r.status,
                r.reason,
                if allowed.is_empty() {
                    String::from(" (RFC: must be accepted)")
                } else {
                    format!(" (RFC allows only {allowed:?})")
                }
            )),
        }
    } else {
        f.note("accepted by parse_datagram");
    }
    check_round_trip(e, &msg, f);
}

/// `reject` outcome: a request refused with one of the RFC's statuses by the layer allowed to.
fn check_rejected(e: &Entry, bytes: &[u8], layer: Option<Layer>, context: &str, f: &mut Findings) {
    let allowed = e.reject_statuses();
    let msg = match parse_datagram(bytes) {
        Err(err) if allowed.contains(&err.status()) => {
            f.note(format!(
                "{context}rejected by parse_datagram: {} {err}",
                err.status()
            ));
            return;
        }
        Err(err) => {
            f.fail(format!(
                "{context}parse_datagram refused it with {} {err}; RFC: {allowed:?}",
                err.status()
            ));
            return;
        }
        Ok(msg) => msg,
    };
    let Message::Request(req) = &msg else {
        f.fail(format!("{context}parsed as a response"));
        return;
    };
    let validated = validate_request(req);
    if layer == Some(Layer::Parser) {
        f.fail(format!(
            "{context}parse_datagram accepted it; the parser must refuse it with {allowed:?} \
             (validate_request then said {:?})",
            validated.as_ref().map_err(|r| (r.status, r.reason.clone()))
        ));
        return;
    }
    match validated {
        Err(r) if allowed.contains(&r.status) => f.note(format!(
            "{context}parsed, then rejected by validate_request: {} {}",
            r.status, r.reason
        )),
        Err(r) => f.fail(format!(
            "{context}validate_request rejected it with {} {}; RFC: {allowed:?}",
            r.status, r.reason
        )),
        Ok(()) if e.liberal_accept => f.note(format!(
            "{context}accepted by parse_datagram and validate_request (the RFC lets a liberal \
             element accept it; a rejection would be {allowed:?})"
        )),
        Ok(()) => f.fail(format!(
            "{context}accepted by both parse_datagram and validate_request; RFC: reject with \
             {allowed:?}"
        )),
    }
}

/// `drop` outcome (responses): refused by the parser, or unusable for matching, or (layer
/// `application`) parsed faithfully so that the element above can recognise and drop it.
fn check_dropped(e: &Entry, bytes: &[u8], f: &mut Findings) {
    let parsed = parse_datagram(bytes);
    match (e.layer, parsed) {
        (Some(Layer::Parser | Layer::Either), Err(err)) => {
            f.note(format!("dropped: parse_datagram refused it ({err})"));
        }
        (Some(Layer::Parser), Ok(msg)) => f.fail(format!(
            "parse_datagram accepted it (status {:?}); the parser must refuse it",
            status_of(&msg)
        )),
        (Some(Layer::Either), Ok(msg)) => {
            // A response is matched to its transaction by Via branch and CSeq (RFC 3261
            // 17.1.3); one where either cannot be read matches nothing and is discarded.
            let unusable = [
                msg.cseq().err().map(|err| format!("CSeq: {err}")),
                msg.via().err().map(|err| format!("Via: {err}")),
                msg.call_id().err().map(|err| format!("Call-ID: {err}")),
            ];
            match unusable.into_iter().flatten().next() {
                Some(why) => f.note(format!("parsed, then unusable for matching: {why}")),
                None => f.fail(
                    "parse_datagram accepted it and its CSeq, Via and Call-ID all read, so \
                     nothing would discard it",
                ),
            }
        }
        (Some(Layer::Application), Ok(msg)) => {
            f.note("accepted by parse_datagram; the element above must discard it");
            if let Some(facts) = &e.facts {
                check_facts(e, bytes, &msg, facts, f);
            }
            check_round_trip(e, &msg, f);
        }
        (Some(Layer::Application), Err(err)) => {
            f.fail(format!(
                "parse_datagram refused a well-formed message: {err}"
            ));
        }
        (None, _) => f.fail("manifest: drop without a layer"),
    }
}

fn status_of(msg: &Message) -> Option<u16> {
    match msg {
        Message::Response(r) => Some(r.status),
        Message::Request(_) => None,
    }
}

fn check_facts(e: &Entry, bytes: &[u8], msg: &Message, x: &Facts, f: &mut Findings) {
    match (msg, e.kind) {
        (Message::Request(req), Kind::Request) => {
            if let Some(method) = &x.method {
                f.eq("method", req.method.as_str(), method.as_str());
            }
            if let Some(uri) = &x.request_uri {
                f.eq("Request-URI", req.uri.as_str(), uri.as_str());
            }
            if let Some(scheme) = &x.uri_scheme {
                f.eq(
                    "Request-URI scheme",
                    req.uri.scheme().to_ascii_lowercase(),
                    scheme.to_ascii_lowercase(),
                );
            }
            if let Some(user) = &x.uri_user {
                f.eq("Request-URI user", req.uri.user(), Some(user.as_str()));
            }
            if let Some(user) = &x.uri_user_unescaped {
                f.eq(
                    "Request-URI user, unescaped",
                    req.uri.user_unescaped().as_deref(),
                    Some(user.as_str()),
                );
            }
            if x.uri_user_absent {
                f.eq("Request-URI user", req.uri.user(), None);
            }
            if let Some(host) = &x.uri_host {
                f.eq(
                    "Request-URI host",
                    req.uri.host().to_ascii_lowercase(),
                    host.to_ascii_lowercase(),
                );
            }
            if let Some(port) = x.uri_port {
                f.eq("Request-URI port", req.uri.port(), Some(port));
            }
            if x.uri_port_absent {
                f.eq("Request-URI port", req.uri.port(), None);
            }
        }
        (Message::Response(resp), Kind::Response) => {
            if let Some(status) = x.status {
                f.eq("status code", resp.status, status);
            }
            if let Some(reason) = &x.reason {
                f.eq("reason phrase", resp.reason.as_str(), reason.as_str());
            }
        }
        (_, kind) => {
            f.fail(format!(
                "parsed as the wrong kind of message (manifest: {kind:?})"
            ));
            return;
        }
    }
    match msg.call_id() {
        Ok(id) => f.eq("Call-ID", id, x.call_id.as_str()),
        Err(err) => f.fail(format!("Call-ID: {err}")),
    }
    match msg.cseq() {
        Ok(cseq) => {
            f.eq("CSeq number", cseq.seq, x.cseq_seq);
            f.eq("CSeq method", cseq.method.as_str(), x.cseq_method.as_str());
        }
        Err(err) => f.fail(format!("CSeq: {err}")),
    }
    match msg.via() {
        Ok(vias) => {
            f.eq("number of Via values", vias.len(), x.via_count);
            if !x.via_transports.is_empty() {
                let got: Vec<&str> = vias.iter().map(|v| v.transport.as_str()).collect();
                f.eq(
                    "Via transports",
                    got,
                    x.via_transports.iter().map(String::as_str).collect(),
                );
            }
            if !x.via_hosts.is_empty() {
                let got: Vec<String> = vias
                    .iter()
                    .map(|v| v.host_text.to_ascii_lowercase())
                    .collect();
                let want: Vec<String> =
                    x.via_hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
                f.eq("Via sent-by hosts", got, want);
            }
            if !x.via_received.is_empty() {
                let got: Vec<&str> = vias.iter().map(|v| v.received().unwrap_or("")).collect();
                f.eq(
                    "Via received parameters",
                    got,
                    x.via_received.iter().map(String::as_str).collect(),
                );
            }
        }
        Err(err) => f.fail(format!("Via: {err}")),
    }
    let raw = RawMessage::scan(bytes);
    let body_start = raw.body_start.unwrap_or(bytes.len());
    let want_body = bytes
        .get(body_start..body_start + x.body_len)
        .unwrap_or_default();
    f.eq("body length", msg.body().len(), x.body_len);
    if msg.body().as_ref() != want_body {
        f.fail("body bytes differ from the fixture's");
    }
    for h in &x.header {
        f.eq(
            &format!("header {}", h.name),
            msg.headers().get(&h.name).map(torture::fold_lws),
            Some(torture::fold_lws(&h.value)),
        );
    }
    for h in &x.header_lines {
        f.eq(
            &format!("number of {} header lines", h.name),
            msg.headers().get_all(&h.name).count(),
            h.count,
        );
    }
}

/// `to_bytes` must produce a message that parses back to the same essentials, and serializing
/// that again must change nothing.
fn check_round_trip(e: &Entry, msg: &Message, f: &mut Findings) {
    let out = msg.to_bytes();
    let again = match parse_datagram(&out) {
        Ok(again) => again,
        Err(err) => {
            f.fail(format!(
                "round trip: parse_datagram(to_bytes()) failed: {err}\n{}",
                String::from_utf8_lossy(&out)
            ));
            return;
        }
    };
    match (msg, &again) {
        (Message::Request(a), Message::Request(b)) => {
            f.eq("round trip: method", b.method.as_str(), a.method.as_str());
            f.eq("round trip: Request-URI", b.uri.as_str(), a.uri.as_str());
        }
        (Message::Response(a), Message::Response(b)) => {
            f.eq("round trip: status", b.status, a.status);
            f.eq("round trip: reason", b.reason.as_str(), a.reason.as_str());
        }
        _ => f.fail("round trip: request and response swapped"),
    }
    f.eq(
        "round trip: Call-ID",
        again.call_id().map_err(|e| e.to_string()),
        msg.call_id().map_err(|e| e.to_string()),
    );
    f.eq(
        "round trip: CSeq",
        again
            .cseq()
            .map(|c| (c.seq, c.method.as_str().to_owned()))
            .map_err(|e| e.to_string()),
        msg.cseq()
            .map(|c| (c.seq, c.method.as_str().to_owned()))
            .map_err(|e| e.to_string()),
    );
    f.eq(
        "round trip: number of Via values",
        again.via().map(|v| v.len()).map_err(|e| e.to_string()),
        msg.via().map(|v| v.len()).map_err(|e| e.to_string()),
    );
    if again.body() != msg.body() {
        f.fail("round trip: body changed");
    }
    if again.to_bytes() != out {
        f.fail("round trip: serializing the re-parsed message gives different bytes");
    }
    if let Some(facts) = &e.facts {
        for s in &facts.absent_from_serialized {
            if torture::find(&out, s.as_bytes()).is_some() {
                f.fail(format!("round trip: serialized message contains {s:?}"));
            }
        }
    }
}

fn check_stream(e: &Entry, bytes: &[u8], expect: StreamExpect, f: &mut Findings) {
    let got = parse_stream(bytes, STREAM_LIMIT);
    match (expect, got) {
        (StreamExpect::Complete, Ok(Some((msg, consumed)))) => {
            let want = e.stream_consumed.unwrap_or(bytes.len());
            f.eq("parse_stream: bytes consumed", consumed, want);
            if let Ok(dgram) = parse_datagram(bytes) {
                f.eq(
                    "parse_stream vs parse_datagram: Call-ID",
                    msg.call_id().ok(),
                    dgram.call_id().ok(),
                );
                f.eq(
                    "parse_stream vs parse_datagram: body",
                    msg.body(),
                    dgram.body(),
                );
            }
            // Every shorter prefix is an incomplete message, never an error or a message.
            if let Some(k) =
                (0..want).find(|&k| !matches!(parse_stream(&bytes[..k], STREAM_LIMIT), Ok(None)))
            {
                f.fail(format!(
                    "parse_stream on the first {k} of {want} bytes: expected Ok(None), got {:?}",
                    parse_stream(&bytes[..k], STREAM_LIMIT).map(|o| o.map(|(_, n)| n))
                ));
            }
        }
        (StreamExpect::NeedMore, Ok(None)) => f.note("parse_stream waits for more bytes"),
        (StreamExpect::Error, Err(err)) => f.note(format!("parse_stream refuses it: {err}")),
        (expect, got) => f.fail(format!(
            "parse_stream: expected {expect:?}, got {:?}",
            got.map(|o| o.map(|(_, n)| format!("a message of {n} bytes")))
        )),
    }
}
