//! Transaction identity: which transaction a message belongs to (RFC 3261 §17.1.3, §17.2.3).
//!
//! Clients match responses on (branch, CSeq method): the branch is ours, so nothing else
//! is needed. Servers match requests on (branch, sent-by, method) with ACK counted as
//! INVITE; requests from RFC 2543 elements (no `z9hG4bK` cookie) fall back to a key made
//! of the dialog and sequence fields.

use std::fmt;

use crate::sip::header::{self, HeaderError, Via};
use crate::sip::message::{HeaderName, Method, Request, Response, SipHeaders};

/// Prefix of every RFC 3261 branch (§8.1.1.7): tells us the branch is globally unique.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// Why a message cannot be assigned to a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// Our own requests must carry an RFC 3261 branch; responses must echo one.
    #[error("top Via has no RFC 3261 branch")]
    NoBranch,
}

/// Identifies one transaction within a [`super::TransactionLayer`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionKey(Inner);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Inner {
    Client {
        branch: String,
        method: Method,
    },
    Server {
        branch: String,
        sent_by: String,
        method: Method,
    },
    /// RFC 2543 peers. The To tag is left out so an ACK (which carries the tag of our
    /// response) still finds its INVITE; two requests differing only in To tag would
    /// collide, which a conforming UAC never produces.
    ServerLegacy {
        request_uri: String,
        from_tag: String,
        call_id: String,
        cseq: u32,
        method: Method,
        top_via: String,
    },
}

/// ACK belongs to the INVITE transaction; everything else (CANCEL included) is its own.
fn matching_method(method: &Method) -> Method {
    match method {
        Method::Ack => Method::Invite,
        m => m.clone(),
    }
}

fn rfc3261_branch(via: &Via) -> Option<&str> {
    via.branch().filter(|b| b.starts_with(MAGIC_COOKIE))
}

/// The first Via element exactly as written.
pub(super) fn top_via_text(headers: &crate::sip::Headers) -> Result<String, KeyError> {
    let first = headers
        .get_by(&HeaderName::Via)
        .ok_or(HeaderError::Missing("Via"))?;
    header::split_list(first)?
        .into_iter()
        .next()
        .map(str::to_owned)
        .ok_or(KeyError::Header(HeaderError::Missing("Via")))
}

impl TransactionKey {
    /// The key of a client transaction we are about to create for `req`.
    pub fn for_outgoing_request(req: &Request) -> Result<TransactionKey, KeyError> {
        let via = req.top_via()?;
        let branch = rfc3261_branch(&via).ok_or(KeyError::NoBranch)?;
        Ok(TransactionKey(Inner::Client {
            branch: branch.to_owned(),
            method: req.method.clone(),
        }))
    }

    /// The client transaction a received response belongs to.
    pub fn for_incoming_response(resp: &Response) -> Result<TransactionKey, KeyError> {
        let via = resp.top_via()?;
        let branch = rfc3261_branch(&via).ok_or(KeyError::NoBranch)?;
        Ok(TransactionKey(Inner::Client {
            branch: branch.to_owned(),
            method: resp.cseq()?.method,
        }))
    }

    /// The server transaction a received request belongs to (ACK maps to its INVITE).
    pub fn for_incoming_request(req: &Request) -> Result<TransactionKey, KeyError> {
        let via = req.top_via()?;
        let method = matching_method(&req.method);
        if let Some(branch) = rfc3261_branch(&via) {
            let sent_by = match via.port {
                Some(p) => format!("{}:{p}", via.host),
                None => via.host.to_string(),
            };
            return Ok(TransactionKey(Inner::Server {
                branch: branch.to_owned(),
                sent_by,
                method,
            }));
        }
        Ok(TransactionKey(Inner::ServerLegacy {
            request_uri: req.uri.as_str().to_owned(),
            from_tag: req.hdr_from()?.tag().unwrap_or_default().to_owned(),
            call_id: req.call_id()?.to_owned(),
            cseq: req.cseq()?.seq,
            method,
            top_via: via.to_string(),
        }))
    }

    /// For a CANCEL's key, the key of the INVITE it cancels (RFC 3261 §9.2: same
    /// matching, method INVITE). `None` for anything but a CANCEL.
    pub fn cancelled_invite(&self) -> Option<TransactionKey> {
        let mut k = self.clone();
        match &mut k.0 {
            Inner::Client { method, .. }
            | Inner::Server { method, .. }
            | Inner::ServerLegacy { method, .. }
                if *method == Method::Cancel =>
            {
                *method = Method::Invite;
                Some(k)
            }
            _ => None,
        }
    }

    /// The key our CANCEL of the client INVITE transaction `self` will have: CANCEL
    /// reuses the INVITE's Via and branch (§9.1).
    pub(super) fn cancel_of_client_invite(&self) -> Option<TransactionKey> {
        match &self.0 {
            Inner::Client {
                branch,
                method: Method::Invite,
            } => Some(TransactionKey(Inner::Client {
                branch: branch.clone(),
                method: Method::Cancel,
            })),
            _ => None,
        }
    }

    /// The method of the transaction (INVITE for ACK-matched keys).
    pub fn method(&self) -> &Method {
        match &self.0 {
            Inner::Client { method, .. }
            | Inner::Server { method, .. }
            | Inner::ServerLegacy { method, .. } => method,
        }
    }

    pub fn is_client(&self) -> bool {
        matches!(self.0, Inner::Client { .. })
    }
}

/// Short form for logs: role, method and branch (or Call-ID for RFC 2543 peers).
impl fmt::Display for TransactionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Client { branch, method } => write!(f, "client {method} {branch}"),
            Inner::Server {
                branch,
                sent_by,
                method,
            } => write!(f, "server {method} {branch} from {sent_by}"),
            Inner::ServerLegacy {
                call_id,
                cseq,
                method,
                ..
            } => write!(f, "server {method} rfc2543 {call_id} cseq {cseq}"),
        }
    }
}
