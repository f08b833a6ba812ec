//! SIP dialogs (RFC 3261 §12), sans-IO: the state two user agents share once an INVITE
//! has a response with a To tag, and how requests inside it are built and checked.
//!
//! A [`Dialog`] is made from the INVITE and the response that created it, on either
//! side ([`Dialog::uas`] when we answered, [`Dialog::uac`] when we sent the INVITE). It
//! builds in-dialog requests ([`Dialog::request`], [`Dialog::ack`]) with the route set,
//! the remote target and the next local CSeq, and checks a received request's CSeq
//! ([`Dialog::check_remote_cseq`]). The Via and Contact are the caller's business (they
//! name our transport address), as is where the request is sent.

use crate::sip::header::split_list;
use crate::sip::{HeaderError, HeaderName, Method, NameAddr, Request, Response, SipHeaders, Uri};

/// Identifies a dialog from our side: Call-ID and our own tag (RFC 3261 §12: the local
/// tag is unique per dialog we create, so the remote tag is not needed to find it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogKey {
    pub call_id: String,
    pub local_tag: String,
}

impl DialogKey {
    /// The key a request received inside one of our dialogs names: its To tag is ours.
    pub fn of_incoming(req: &Request) -> Option<DialogKey> {
        let to = req.hdr_to().ok()?;
        Some(DialogKey {
            call_id: req.call_id().ok()?.to_owned(),
            local_tag: to.tag()?.to_owned(),
        })
    }
}

/// Why a request cannot be taken into a dialog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    #[error("{0}")]
    Header(#[from] HeaderError),
    #[error("the response has no To tag")]
    NoRemoteTag,
    #[error("the INVITE has no From tag")]
    NoFromTag,
    #[error("no usable Contact: {0}")]
    Contact(String),
    /// RFC 3261 §12.2.2: a request whose CSeq is lower than the last one is answered 500.
    #[error("CSeq {got} is not higher than {last}, the dialog's last")]
    CSeqOutOfOrder { got: u32, last: u32 },
}

/// One dialog, from our side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    /// Our From in requests we send (with our tag).
    local: String,
    /// Their To in requests we send (with their tag).
    remote: String,
    /// Where requests go: the peer's Contact (RFC 3261 §12.1.1 / §12.1.2).
    pub remote_target: Uri,
    /// Route set, in the order Route headers take in requests we send.
    pub route_set: Vec<String>,
    local_cseq: u32,
    remote_cseq: Option<u32>,
}

impl Dialog {
    /// The dialog an INVITE (received) creates when we answer it with To tag `local_tag`.
    pub fn uas(invite: &Request, local_tag: &str) -> Result<Dialog, DialogError> {
        let from = invite.hdr_from()?;
        let remote_tag = from.tag().ok_or(DialogError::NoFromTag)?.to_owned();
        let to_value = single_value(invite, HeaderName::To)?;
        let local = if invite.hdr_to()?.tag().is_some() {
            to_value.to_owned()
        } else {
            format!("{to_value};tag={local_tag}")
        };
        Ok(Dialog {
            call_id: invite.call_id()?.to_owned(),
            local_tag: local_tag.to_owned(),
            remote_tag,
            local,
            remote: single_value(invite, HeaderName::From)?.to_owned(),
            remote_target: contact_uri(invite)?,
            // UAS: the Record-Route values in order (RFC 3261 §12.1.1).
            route_set: route_values(invite)?,
            local_cseq: 0,
            remote_cseq: Some(invite.cseq()?.seq),
        })
    }

    /// The dialog a (provisional or final) response with a To tag creates for an INVITE
    /// we sent.
    pub fn uac(invite: &Request, response: &Response) -> Result<Dialog, DialogError> {
        let from = invite.hdr_from()?;
        let local_tag = from.tag().ok_or(DialogError::NoFromTag)?.to_owned();
        let to = response.hdr_to()?;
        let remote_tag = to.tag().ok_or(DialogError::NoRemoteTag)?.to_owned();
        // UAC: the Record-Route values in reverse (RFC 3261 §12.1.2).
        let mut route_set = route_values(response)?;
        route_set.reverse();
        Ok(Dialog {
            call_id: invite.call_id()?.to_owned(),
            local_tag,
            remote_tag,
            local: single_value(invite, HeaderName::From)?.to_owned(),
            remote: single_value(response, HeaderName::To)?.to_owned(),
            remote_target: contact_uri(response)?,
            route_set,
            local_cseq: invite.cseq()?.seq,
            remote_cseq: None,
        })
    }

    pub fn key(&self) -> DialogKey {
        DialogKey {
            call_id: self.call_id.clone(),
            local_tag: self.local_tag.clone(),
        }
    }

    /// A new request inside the dialog (BYE, re-INVITE, UPDATE, INFO, ...) with the next
    /// CSeq: Request-URI, Route, From, To, Call-ID, CSeq, Max-Forwards. The caller adds
    /// Via and Contact.
    pub fn request(&mut self, method: Method) -> Request {
        self.local_cseq = self.local_cseq.wrapping_add(1).max(1);
        self.build(method, self.local_cseq)
    }

    /// The ACK for a 2xx to the INVITE with CSeq number `invite_seq` (RFC 3261 §13.2.2.4:
    /// same CSeq number, method ACK). Updates the remote target from the 2xx.
    pub fn ack(&mut self, invite_seq: u32, ok: &Response) -> Request {
        if let Ok(target) = contact_uri(ok) {
            self.remote_target = target;
        }
        self.build(Method::Ack, invite_seq)
    }

    fn build(&self, method: Method, seq: u32) -> Request {
        let mut req = Request::new(method.clone(), self.remote_target.clone());
        for route in &self.route_set {
            req.headers.push(HeaderName::Route, route.clone());
        }
        req.headers.push(HeaderName::MaxForwards, "70");
        req.headers.push(HeaderName::From, self.local.clone());
        req.headers.push(HeaderName::To, self.remote.clone());
        req.headers.push(HeaderName::CallId, self.call_id.clone());
        req.headers
            .push(HeaderName::CSeq, format!("{seq} {}", method.as_str()));
        req
    }

    /// Checks a request received in the dialog and takes its CSeq: a number not higher
    /// than the last one is refused (answer 500, RFC 3261 §12.2.2). ACK and CANCEL carry
    /// their INVITE's number and are not checked. A target refresh (re-INVITE, UPDATE)
    /// moves the remote target to its Contact.
    pub fn check_remote_cseq(&mut self, req: &Request) -> Result<(), DialogError> {
        if matches!(req.method, Method::Ack | Method::Cancel) {
            return Ok(());
        }
        let seq = req.cseq()?.seq;
        if let Some(last) = self.remote_cseq
            && seq <= last
        {
            return Err(DialogError::CSeqOutOfOrder { got: seq, last });
        }
        self.remote_cseq = Some(seq);
        if matches!(req.method, Method::Invite | Method::Update)
            && let Ok(target) = contact_uri(req)
        {
            self.remote_target = target;
        }
        Ok(())
    }
}

fn single_value(msg: &impl SipHeaders, name: HeaderName) -> Result<&str, HeaderError> {
    let mut values = msg.hdrs().get_all_by(name.clone());
    let first = values.next().ok_or(HeaderError::Missing(match name {
        HeaderName::From => "From",
        _ => "To",
    }))?;
    Ok(first.trim())
}

fn contact_uri(msg: &impl SipHeaders) -> Result<Uri, DialogError> {
    let list = msg
        .hdrs()
        .list(HeaderName::Contact)
        .map_err(|e| DialogError::Contact(e.to_string()))?;
    let first = list
        .first()
        .ok_or_else(|| DialogError::Contact("missing Contact".into()))?;
    let addr = NameAddr::parse(first).map_err(|e| DialogError::Contact(e.to_string()))?;
    Ok(addr.uri)
}

fn route_values(msg: &impl SipHeaders) -> Result<Vec<String>, HeaderError> {
    let mut out = Vec::new();
    for value in msg.hdrs().get_all_by(HeaderName::RecordRoute) {
        for element in split_list(value)? {
            out.push(element.trim().to_owned());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{Message, parse_datagram};

    fn request(text: &str) -> Request {
        match parse_datagram(text.replace('\n', "\r\n").as_bytes()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => panic!("not a request"),
        }
    }

    fn response(text: &str) -> Response {
        match parse_datagram(text.replace('\n', "\r\n").as_bytes()).unwrap() {
            Message::Response(r) => r,
            Message::Request(_) => panic!("not a response"),
        }
    }

    const INVITE: &str = "INVITE sip:1002@example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc
Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>
Max-Forwards: 70
From: \"Alice\" <sip:1001@example.com>;tag=a1
To: <sip:1002@example.com>
Call-ID: c1@192.0.2.1
CSeq: 7 INVITE
Contact: <sip:1001@192.0.2.1:5070>
Content-Length: 0

";

    #[test]
    fn uas_dialog_takes_tags_target_and_route_set_in_order() {
        let invite = request(INVITE);
        let mut d = Dialog::uas(&invite, "b2").unwrap();
        assert_eq!(d.remote_tag, "a1");
        assert_eq!(d.local_tag, "b2");
        assert_eq!(d.remote_target.as_str(), "sip:1001@192.0.2.1:5070");
        assert_eq!(
            d.route_set,
            ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
        );
        let bye = d.request(Method::Bye);
        assert_eq!(bye.uri.as_str(), "sip:1001@192.0.2.1:5070");
        assert_eq!(
            bye.headers.get_by(&HeaderName::From),
            Some("<sip:1002@example.com>;tag=b2")
        );
        assert_eq!(
            bye.headers.get_by(&HeaderName::To),
            Some("\"Alice\" <sip:1001@example.com>;tag=a1")
        );
        assert_eq!(bye.headers.get_by(&HeaderName::CSeq), Some("1 BYE"));
        let routes: Vec<_> = bye.headers.get_all_by(HeaderName::Route).collect();
        assert_eq!(
            routes,
            ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
        );
        assert_eq!(
            d.request(Method::Info).headers.get_by(&HeaderName::CSeq),
            Some("2 INFO")
        );
    }

    #[test]
    fn remote_cseq_must_grow_except_for_ack_and_cancel() {
        let invite = request(INVITE);
        let mut d = Dialog::uas(&invite, "b2").unwrap();
        let mut bye = invite.clone();
        bye.method = Method::Bye;
        bye.headers.set(HeaderName::CSeq, "7 BYE");
        assert_eq!(
            d.check_remote_cseq(&bye),
            Err(DialogError::CSeqOutOfOrder { got: 7, last: 7 })
        );
        let mut ack = invite.clone();
        ack.method = Method::Ack;
        ack.headers.set(HeaderName::CSeq, "7 ACK");
        assert_eq!(d.check_remote_cseq(&ack), Ok(()));
        bye.headers.set(HeaderName::CSeq, "8 BYE");
        assert_eq!(d.check_remote_cseq(&bye), Ok(()));
        bye.headers.set(HeaderName::CSeq, "8 BYE");
        assert!(d.check_remote_cseq(&bye).is_err());
    }

    #[test]
    fn a_reinvite_refreshes_the_remote_target() {
        let invite = request(INVITE);
        let mut d = Dialog::uas(&invite, "b2").unwrap();
        let mut re = invite.clone();
        re.headers.set(HeaderName::CSeq, "8 INVITE");
        re.headers
            .set(HeaderName::Contact, "<sip:1001@198.51.100.9:5090>");
        d.check_remote_cseq(&re).unwrap();
        assert_eq!(d.remote_target.as_str(), "sip:1001@198.51.100.9:5090");
    }

    #[test]
    fn uac_dialog_reverses_record_route_and_acks_with_the_invite_cseq() {
        let invite = request(
            "INVITE sip:1002@192.0.2.9 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx
Max-Forwards: 70
From: <sip:b2b@192.0.2.1>;tag=ours
To: <sip:1002@192.0.2.9>
Call-ID: leg-b
CSeq: 1 INVITE
Contact: <sip:b2b@192.0.2.1>
Content-Length: 0

",
        );
        let ok = response(
            "SIP/2.0 200 OK
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx
Record-Route: <sip:p2;lr>
Record-Route: <sip:p1;lr>
From: <sip:b2b@192.0.2.1>;tag=ours
To: <sip:1002@192.0.2.9>;tag=theirs
Call-ID: leg-b
CSeq: 1 INVITE
Contact: <sip:1002@192.0.2.9:5080>
Content-Length: 0

",
        );
        let mut d = Dialog::uac(&invite, &ok).unwrap();
        assert_eq!(d.route_set, ["<sip:p1;lr>", "<sip:p2;lr>"]);
        let ack = d.ack(1, &ok);
        assert_eq!(ack.headers.get_by(&HeaderName::CSeq), Some("1 ACK"));
        assert_eq!(ack.uri.as_str(), "sip:1002@192.0.2.9:5080");
        assert_eq!(
            ack.headers.get_by(&HeaderName::To),
            Some("<sip:1002@192.0.2.9>;tag=theirs")
        );
        let bye = d.request(Method::Bye);
        assert_eq!(bye.headers.get_by(&HeaderName::CSeq), Some("2 BYE"));
        assert_eq!(d.key().local_tag, "ours");
    }

    #[test]
    fn missing_tags_or_contact_are_errors() {
        let mut invite = request(INVITE);
        invite
            .headers
            .set(HeaderName::From, "<sip:1001@example.com>");
        assert_eq!(Dialog::uas(&invite, "x"), Err(DialogError::NoFromTag));
        let mut invite = request(INVITE);
        invite.headers.remove(&HeaderName::Contact);
        assert!(matches!(
            Dialog::uas(&invite, "x"),
            Err(DialogError::Contact(_))
        ));
    }
}
