//! Request validation a UAS/proxy core does before acting on a parsed request
//! (RFC 3261 8.2 and 16.3): mandatory headers present once and well formed, CSeq
//! method matching, URI scheme, required extensions.

use super::header::{self, HeaderError};
use super::message::{HeaderName, Method, Request, SipHeaders};

/// Why a request is refused, as the response to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub reason: String,
    /// Extra headers the response must carry (e.g. `Unsupported` with 420).
    pub headers: Vec<(HeaderName, String)>,
}

impl Rejection {
    pub fn new(status: u16, reason: impl Into<String>) -> Rejection {
        Rejection {
            status,
            reason: reason.into(),
            headers: Vec::new(),
        }
    }
}

impl From<HeaderError> for Rejection {
    fn from(e: HeaderError) -> Rejection {
        Rejection::new(400, e.to_string())
    }
}

/// Option tags this node implements; anything else in `Require` gets 420.
pub const SUPPORTED_EXTENSIONS: &[&str] = &[];

/// URI schemes we route. Anything else in the Request-URI gets 416.
const SCHEMES: &[&str] = &["sip", "sips", "tel"];

pub fn validate_request(req: &Request) -> Result<(), Rejection> {
    if !SCHEMES.contains(&req.uri.scheme()) {
        return Err(Rejection::new(416, "Unsupported URI Scheme"));
    }
    if req.uri.is_sip() && !req.uri.headers().is_empty() {
        return Err(Rejection::new(400, "Request-URI must not contain headers"));
    }
    req.call_id()?;
    let cseq = req.cseq()?;
    if cseq.method != req.method {
        return Err(Rejection::new(
            400,
            "CSeq method does not match request method",
        ));
    }
    req.hdr_from().map_err(|e| e.in_header("From"))?;
    req.hdr_to().map_err(|e| e.in_header("To"))?;
    req.via()?;
    req.max_forwards()?;
    req.expires()?;
    req.content_type()?;
    if let Some(date) = req.headers.get_by(&HeaderName::Date) {
        // rfc1123-date: "Sun, 06 Nov 1994 08:49:37 GMT"; SIP allows only GMT.
        if httpdate_like(date).is_none() {
            return Err(Rejection::new(400, "Malformed Date header"));
        }
    }
    let contacts = req.contacts()?;
    if let header::ContactList::Addrs(list) = &contacts {
        for c in list {
            c.expires()?;
            c.q()?;
        }
    }
    if !matches!(req.method, Method::Ack | Method::Cancel) {
        let unsupported: Vec<&str> = req
            .option_tags(HeaderName::Require)?
            .into_iter()
            .filter(|t| {
                !SUPPORTED_EXTENSIONS
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(t))
            })
            .collect();
        if !unsupported.is_empty() {
            let mut r = Rejection::new(420, "Bad Extension");
            r.headers
                .push((HeaderName::Unsupported, unsupported.join(", ")));
            return Err(r);
        }
    }
    Ok(())
}

/// Checks the shape `wkday, DD Mon YYYY HH:MM:SS GMT`.
fn httpdate_like(s: &str) -> Option<()> {
    let s = s.trim();
    let (wkday, rest) = s.split_once(", ")?;
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    DAYS.contains(&wkday).then_some(())?;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, zone] = parts.as_slice() else {
        return None;
    };
    let digits = |x: &str, n: usize| x.len() == n && x.bytes().all(|b| b.is_ascii_digit());
    (digits(day, 2) && MONTHS.contains(month) && digits(year, 4) && *zone == "GMT").then_some(())?;
    let t: Vec<&str> = time.split(':').collect();
    (t.len() == 3 && t.iter().all(|p| digits(p, 2))).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::Message;
    use crate::sip::parse::parse_datagram;

    fn req(extra: &str, method: &str, cseq_method: &str) -> Request {
        let msg = format!(
            "{method} sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
             To: <sip:a@example.com>\r\nFrom: <sip:b@example.com>;tag=1\r\nCall-ID: c\r\n\
             CSeq: 1 {cseq_method}\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        match parse_datagram(msg.as_bytes()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => panic!(),
        }
    }

    #[test]
    fn accepts_a_good_request() {
        assert_eq!(validate_request(&req("", "OPTIONS", "OPTIONS")), Ok(()));
        let date = "Date: Sat, 13 Nov 2010 23:29:00 GMT\r\n";
        assert_eq!(validate_request(&req(date, "OPTIONS", "OPTIONS")), Ok(()));
    }

    #[test]
    fn rejects() {
        let cases = [
            (req("", "OPTIONS", "INVITE"), 400),
            (
                req(
                    "Date: Fri, 01 Jan 2010 16:00:00 EST\r\n",
                    "OPTIONS",
                    "OPTIONS",
                ),
                400,
            ),
            (
                req("Require: nothingSupportsThis\r\n", "OPTIONS", "OPTIONS"),
                420,
            ),
            (req("Call-ID: again\r\n", "OPTIONS", "OPTIONS"), 400),
            (req("Max-Forwards: 300\r\n", "OPTIONS", "OPTIONS"), 400),
        ];
        for (r, status) in cases {
            assert_eq!(validate_request(&r).unwrap_err().status, status, "{r:?}");
        }
    }
}
