//! Registration bindings per (tenant, extension), with the RFC 3261 10.3 rules: a
//! REGISTER with the same Call-ID as a binding must carry a higher CSeq, `expires` 0
//! removes a contact, and an address-of-record holds at most [`MAX_CONTACTS_PER_AOR`].
//!
//! Expiry is absolute (`expires_at_ms`), computed from the time the leader stamped on
//! the entry, so every replica agrees on it. Expired bindings are ignored by every rule
//! here and removed by `SweepExpired`.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::error::{BoundedField, CommandError, TextField};
use super::id::{Id, check_text};
use super::queue::check_range;

pub const MAX_CONTACTS_PER_AOR: usize = 10;
pub const MAX_EXPIRES_SECS: u32 = 86_400;
pub const MAX_CONTACT_LEN: usize = 512;
pub const MAX_CALL_ID_LEN: usize = 256;
pub const MAX_PARAMS_LEN: usize = 512;
/// RFC 3261 qvalue in thousandths: 0..=1000.
pub const MAX_Q: u16 = 1000;

/// One contact bound to an extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The Contact URI as the phone wrote it.
    pub contact: String,
    /// Absolute expiry, milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
    /// q-value in thousandths.
    pub q: u16,
    pub call_id: String,
    pub cseq: u32,
    /// Where the REGISTER came from (behind NAT the contact may be unreachable).
    pub source: SocketAddr,
    pub transport: Transport,
    /// Contact header parameters other than expires and q (e.g. `+sip.instance`), as
    /// written; may be empty.
    pub params: String,
}

/// The transport a REGISTER arrived on, which requests to the contact reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Binding {
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.expires_at_ms > now_ms
    }
}

/// One Contact of a REGISTER, expiry already resolved by the node (param, header,
/// default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactUpdate {
    pub contact: String,
    pub expires_secs: u32,
    pub q: u16,
    /// Other Contact parameters, as written; may be empty.
    pub params: String,
}

/// A REGISTER for one extension, as the node parsed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterRequest {
    pub tenant: Id,
    pub extension: Id,
    pub call_id: String,
    pub cseq: u32,
    pub source: SocketAddr,
    pub transport: Transport,
    pub contacts: Vec<ContactUpdate>,
}

impl RegisterRequest {
    pub(crate) fn validate(&self) -> Result<(), CommandError> {
        check_text(TextField::CallId, &self.call_id, MAX_CALL_ID_LEN)?;
        for c in &self.contacts {
            check_text(TextField::Contact, &c.contact, MAX_CONTACT_LEN)?;
            check_range(
                BoundedField::Expires,
                c.expires_secs.into(),
                0,
                MAX_EXPIRES_SECS.into(),
            )?;
            check_range(BoundedField::Q, c.q.into(), 0, MAX_Q.into())?;
            if !c.params.is_empty() {
                check_text(TextField::ContactParams, &c.params, MAX_PARAMS_LEN)?;
            }
        }
        Ok(())
    }
}

/// Computes an AOR's bindings after `req` at `now_ms` (RFC 3261 10.3 steps 6-8),
/// leaving `current` alone; expired bindings are dropped from the result. Sorted by
/// q, highest first, then by contact, so the order is the same on every replica.
pub(crate) fn updated(
    current: &[Binding],
    req: &RegisterRequest,
    now_ms: u64,
) -> Result<Vec<Binding>, CommandError> {
    let mut next: Vec<Binding> = current
        .iter()
        .filter(|b| b.is_live(now_ms))
        .cloned()
        .collect();
    for c in &req.contacts {
        let existing = next
            .iter()
            .position(|b| b.contact.eq_ignore_ascii_case(&c.contact));
        if let Some(i) = existing
            && next[i].call_id == req.call_id
            && next[i].cseq >= req.cseq
        {
            return Err(stale(req));
        }
        let binding = Binding {
            contact: c.contact.clone(),
            expires_at_ms: now_ms.saturating_add(u64::from(c.expires_secs) * 1000),
            q: c.q,
            call_id: req.call_id.clone(),
            cseq: req.cseq,
            source: req.source,
            transport: req.transport,
            params: c.params.clone(),
        };
        match (existing, c.expires_secs) {
            (Some(i), 0) => {
                next.remove(i);
            }
            (None, 0) => {}
            (Some(i), _) => next[i] = binding,
            (None, _) => next.push(binding),
        }
    }
    if next.len() > MAX_CONTACTS_PER_AOR {
        return Err(CommandError::TooManyContacts {
            extension: req.extension.clone(),
            limit: MAX_CONTACTS_PER_AOR,
        });
    }
    next.sort_by(|a, b| b.q.cmp(&a.q).then_with(|| a.contact.cmp(&b.contact)));
    Ok(next)
}

/// `Contact: *` with `Expires: 0`: refused if a live binding from the same Call-ID has
/// a CSeq at least as high (RFC 3261 10.3 step 6).
pub(crate) fn check_remove_all(
    current: &[Binding],
    call_id: &str,
    cseq: u32,
    now_ms: u64,
) -> Result<(), CommandError> {
    if current
        .iter()
        .any(|b| b.is_live(now_ms) && b.call_id == call_id && b.cseq >= cseq)
    {
        return Err(CommandError::StaleCseq {
            call_id: call_id.to_owned(),
            cseq,
        });
    }
    Ok(())
}

fn stale(req: &RegisterRequest) -> CommandError {
    CommandError::StaleCseq {
        call_id: req.call_id.clone(),
        cseq: req.cseq,
    }
}
