//! RFC 3261 10.3 binding rules, sans-IO: given an AOR's current bindings and one
//! REGISTER's contacts, compute the new bindings or refuse the update.
//!
//! This runs *inside* the location store, atomically per AOR (under the in-memory
//! store's lock today, in the Raft state machine's apply later), so two concurrent
//! REGISTERs for one AOR can never interleave between the check and the write.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// One contact bound to an address-of-record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The Contact URI as the phone wrote it (what we send requests to).
    pub contact: String,
    /// Absolute expiry, milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
    /// q-value in thousandths (RFC 3261 qvalue), 1000 when not given.
    pub q: u16,
    pub call_id: String,
    pub cseq: u32,
    /// Where the REGISTER really came from (NAT: the contact may be unreachable).
    pub source: SocketAddr,
    /// "UDP" or "TCP".
    pub transport: String,
    /// Contact header parameters other than expires and q (e.g. +sip.instance), as written.
    pub params: String,
}

impl Binding {
    /// Seconds left before expiry at `now_ms`, at least 0.
    pub fn remaining_secs(&self, now_ms: u64) -> u32 {
        u32::try_from(self.expires_at_ms.saturating_sub(now_ms).div_ceil(1000)).unwrap_or(u32::MAX)
    }
}

/// One Contact of a REGISTER, with its expiry already resolved (param, header, default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactUpdate {
    pub contact: String,
    pub expires_secs: u32,
    pub q: u16,
    pub params: String,
}

/// What a REGISTER asks of the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegisterOp {
    /// Query (no Contact): change nothing, return the bindings.
    Fetch,
    /// `Contact: *` with `Expires: 0`: remove every binding.
    RemoveAll,
    Update(Vec<ContactUpdate>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterRequest {
    pub aor: String,
    pub op: RegisterOp,
    pub call_id: String,
    pub cseq: u32,
    pub source: SocketAddr,
    pub transport: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum BindingError {
    /// Same Call-ID with a CSeq not higher than the stored one: an old or replayed request.
    #[error("Out-of-order REGISTER (CSeq not higher than the binding's)")]
    StaleCseq,
    #[error("Too many contacts for this address-of-record (limit {0})")]
    TooManyContacts(usize),
}

/// Drops expired bindings; used on every update and by the sweeper.
pub fn purge_expired(bindings: &mut Vec<Binding>, now_ms: u64) {
    bindings.retain(|b| b.expires_at_ms > now_ms);
}

/// Applies one REGISTER to an AOR's bindings (RFC 3261 10.3 steps 6-8).
/// On error `bindings` is unchanged.
pub fn apply(
    bindings: &mut Vec<Binding>,
    req: &RegisterRequest,
    now_ms: u64,
    max_contacts: usize,
) -> Result<(), BindingError> {
    purge_expired(bindings, now_ms);
    match &req.op {
        RegisterOp::Fetch => Ok(()),
        RegisterOp::RemoveAll => {
            // Step 6: for `*`, a binding from the same Call-ID with a higher-or-equal
            // CSeq means this request is stale.
            if bindings
                .iter()
                .any(|b| b.call_id == req.call_id && b.cseq >= req.cseq)
            {
                return Err(BindingError::StaleCseq);
            }
            bindings.clear();
            Ok(())
        }
        RegisterOp::Update(contacts) => {
            let mut next = bindings.clone();
            for c in contacts {
                let existing = next
                    .iter()
                    .position(|b| same_contact(&b.contact, &c.contact));
                if let Some(i) = existing {
                    let b = &next[i];
                    if b.call_id == req.call_id && b.cseq >= req.cseq {
                        return Err(BindingError::StaleCseq);
                    }
                    if c.expires_secs == 0 {
                        next.remove(i);
                        continue;
                    }
                }
                if c.expires_secs == 0 {
                    continue;
                }
                let binding = Binding {
                    contact: c.contact.clone(),
                    expires_at_ms: now_ms + u64::from(c.expires_secs) * 1000,
                    q: c.q,
                    call_id: req.call_id.clone(),
                    cseq: req.cseq,
                    source: req.source,
                    transport: req.transport.clone(),
                    params: c.params.clone(),
                };
                match existing {
                    Some(i) => next[i] = binding,
                    None => next.push(binding),
                }
            }
            if next.len() > max_contacts {
                return Err(BindingError::TooManyContacts(max_contacts));
            }
            // Highest q first, so lookups can fork or hunt in preference order.
            next.sort_by_key(|b| std::cmp::Reverse(b.q));
            *bindings = next;
            Ok(())
        }
    }
}

/// Contact URIs are compared by the RFC 3261 19.1.4 rules; we approximate with a
/// case-insensitive comparison of scheme and host and an exact user part, which is
/// what phones send back unchanged on re-registration.
fn same_contact(a: &str, b: &str) -> bool {
    match (crate::sip::Uri::parse(a), crate::sip::Uri::parse(b)) {
        (Ok(x), Ok(y)) => {
            x.scheme() == y.scheme()
                && x.user() == y.user()
                && x.host().eq_ignore_ascii_case(y.host())
                && x.port() == y.port()
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(op: RegisterOp, call_id: &str, cseq: u32) -> RegisterRequest {
        RegisterRequest {
            aor: "1001@demo".into(),
            op,
            call_id: call_id.into(),
            cseq,
            source: "127.0.0.1:5062".parse().unwrap(),
            transport: "UDP".into(),
        }
    }

    fn contact(uri: &str, expires: u32, q: u16) -> ContactUpdate {
        ContactUpdate {
            contact: uri.into(),
            expires_secs: expires,
            q,
            params: String::new(),
        }
    }

    #[test]
    fn add_refresh_and_remove() {
        let mut b = Vec::new();
        let add = req(
            RegisterOp::Update(vec![contact("sip:1001@10.0.0.1", 60, 1000)]),
            "c1",
            1,
        );
        apply(&mut b, &add, 0, 10).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].remaining_secs(0), 60);
        let refresh = req(
            RegisterOp::Update(vec![contact("sip:1001@10.0.0.1", 120, 1000)]),
            "c1",
            2,
        );
        apply(&mut b, &refresh, 1000, 10).unwrap();
        assert_eq!(b[0].remaining_secs(1000), 120);
        let remove = req(
            RegisterOp::Update(vec![contact("sip:1001@10.0.0.1", 0, 1000)]),
            "c1",
            3,
        );
        apply(&mut b, &remove, 2000, 10).unwrap();
        assert!(b.is_empty());
    }

    #[test]
    fn stale_cseq_is_refused_and_changes_nothing() {
        let mut b = Vec::new();
        apply(
            &mut b,
            &req(
                RegisterOp::Update(vec![contact("sip:a@h", 60, 1000)]),
                "c1",
                5,
            ),
            0,
            10,
        )
        .unwrap();
        let before = b.clone();
        let old = req(
            RegisterOp::Update(vec![contact("sip:a@h", 0, 1000)]),
            "c1",
            5,
        );
        assert_eq!(apply(&mut b, &old, 0, 10), Err(BindingError::StaleCseq));
        assert_eq!(b, before);
        // A different Call-ID (phone rebooted) may update regardless of CSeq.
        let other = req(
            RegisterOp::Update(vec![contact("sip:a@h", 0, 1000)]),
            "c2",
            1,
        );
        apply(&mut b, &other, 0, 10).unwrap();
        assert!(b.is_empty());
    }

    #[test]
    fn several_contacts_sorted_by_q_and_limited() {
        let mut b = Vec::new();
        let r = req(
            RegisterOp::Update(vec![
                contact("sip:a@h1", 60, 100),
                contact("sip:a@h2", 60, 900),
            ]),
            "c1",
            1,
        );
        apply(&mut b, &r, 0, 10).unwrap();
        assert_eq!(b[0].contact, "sip:a@h2");
        let too_many = req(
            RegisterOp::Update(vec![contact("sip:a@h3", 60, 100)]),
            "c1",
            2,
        );
        assert_eq!(
            apply(&mut b, &too_many, 0, 2),
            Err(BindingError::TooManyContacts(2))
        );
    }

    #[test]
    fn wildcard_removes_all_and_expiry_purges() {
        let mut b = Vec::new();
        let r = req(
            RegisterOp::Update(vec![
                contact("sip:a@h1", 1, 1000),
                contact("sip:a@h2", 60, 1000),
            ]),
            "c1",
            1,
        );
        apply(&mut b, &r, 0, 10).unwrap();
        apply(&mut b, &req(RegisterOp::Fetch, "c9", 1), 1500, 10).unwrap();
        assert_eq!(b.len(), 1, "the 1-second binding has expired");
        apply(&mut b, &req(RegisterOp::RemoveAll, "c2", 1), 2000, 10).unwrap();
        assert!(b.is_empty());
    }
}
