//! Admission of calls against a tenant's quotas (`max_concurrent_calls`,
//! `max_call_attempts_per_sec`), cluster-wide. Sans-IO: time comes in as `Instant`s.
//!
//! Each node counts its own calls exactly and adds what the other nodes last reported
//! through the control plane ([`OthersLoad`], at most ~1-5 s old). So the limits are
//! exact on one node and soft across nodes: two nodes admitting at the same moment can
//! overshoot a tenant's limit by what arrived between two reports.
//!
//! - **Concurrent calls**: refused when this node's active calls plus the others'
//!   reach `max_concurrent_calls`.
//! - **Attempts per second**: a token bucket per tenant, refilled at
//!   `max_call_attempts_per_sec` minus the others' reported attempts/s, but never below
//!   an even share `max / (1 + other nodes reporting the tenant)`, so one busy node
//!   cannot lock the others out entirely. The bucket holds one second's worth (at least
//!   one attempt), so a burst after a quiet second is allowed up to the rate.
//! - Only admitted attempts count (towards the rate and the load report): refused ones
//!   consumed no quota.
//! - 0 means none allowed.
//!
//! The B2BUA calls [`Admission::admit`] for every new call (INVITE outside a dialog,
//! once the tenant is known), answers 503 with `Retry-After:`
//! [`Refusal::retry_after_secs`] when refused, and calls [`Admission::release`] exactly
//! once when an admitted call ends, however it ends. [`load_source`] feeds the load
//! reporter ([`crate::cluster::load::spawn_load_reporter`]).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tongdai_control_plane::model::{Id, Quotas, TenantLoad};

use crate::cluster::load::OthersLoad;

/// Bucket credit is counted in billionths of an attempt, so fractional rates (an even
/// share of 1/s over three nodes) refill exactly in integers.
const ATTEMPT: u64 = 1_000_000_000;
/// The attempt window for load reports: 10 slots of 100 ms.
const SLOT: Duration = Duration::from_millis(100);
const SLOTS: usize = 10;

/// Suggested `Retry-After` when the concurrent-call quota is reached: calls end at
/// their own pace, so a few seconds.
const RETRY_CONCURRENT_SECS: u32 = 5;
/// ... and when the attempt rate is: the bucket refills within about a second.
const RETRY_RATE_SECS: u32 = 1;

/// Why a call attempt was refused; the B2BUA answers 503 with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The tenant has `limit` calls at once across the cluster already.
    Concurrent { limit: u32 },
    /// The tenant's attempts per second (`limit`) are used up.
    Rate { limit: u32 },
}

impl Refusal {
    /// Seconds for the 503's `Retry-After` header.
    pub fn retry_after_secs(&self) -> u32 {
        match self {
            Refusal::Concurrent { .. } => RETRY_CONCURRENT_SECS,
            Refusal::Rate { .. } => RETRY_RATE_SECS,
        }
    }
}

/// Fit for a reason phrase: `Tenant call quota reached (20 concurrent calls)`.
impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Concurrent { limit } => {
                write!(f, "Tenant call quota reached ({limit} concurrent calls)")
            }
            Refusal::Rate { limit } => {
                write!(f, "Tenant call quota reached ({limit} call attempts/s)")
            }
        }
    }
}

/// One tenant's calls on this node.
#[derive(Debug)]
struct TenantCalls {
    active: u32,
    /// Token bucket: credit in [`ATTEMPT`] units, as of `refilled_at`.
    credit: u64,
    refilled_at: Instant,
    /// The bucket's refill rate (units per second) and capacity when last used.
    rate: u64,
    capacity: u64,
    /// Admitted attempts per 100 ms slot: (slot number, count), indexed by slot % 10.
    window: [(u64, u32); SLOTS],
    /// The `max_concurrent_calls` last published as a gauge.
    published_quota: Option<u32>,
}

impl TenantCalls {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled_at);
        // Capped so the product cannot overflow: past a day the bucket is full anyway.
        let nanos = elapsed.min(Duration::from_secs(86_400)).as_nanos();
        let gained = u128::from(self.rate) * nanos / 1_000_000_000;
        let credit = u128::from(self.credit) + gained;
        self.credit = u64::try_from(credit.min(u128::from(self.capacity))).unwrap_or(u64::MAX);
        self.refilled_at = now.max(self.refilled_at);
    }

    fn attempts_in_last_second(&self, slot: u64) -> u32 {
        self.window
            .iter()
            .filter(|(s, _)| *s + SLOTS as u64 > slot && *s <= slot)
            .map(|(_, n)| *n)
            .sum()
    }

    fn count_attempt(&mut self, slot: u64) {
        let entry = &mut self.window[(slot % SLOTS as u64) as usize];
        if entry.0 == slot {
            entry.1 = entry.1.saturating_add(1);
        } else {
            *entry = (slot, 1);
        }
    }
}

/// This node's admission state: one per node, behind a mutex in the B2BUA.
#[derive(Debug, Default)]
pub struct Admission {
    tenants: HashMap<Id, TenantCalls>,
    /// The first instant seen: slot numbers count from it.
    origin: Option<Instant>,
}

impl Admission {
    pub fn new() -> Admission {
        Admission::default()
    }

    fn slot(&mut self, now: Instant) -> u64 {
        let origin = *self.origin.get_or_insert(now);
        let elapsed = now.saturating_duration_since(origin);
        u64::try_from(elapsed.as_nanos() / SLOT.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Checks and counts a call attempt of `tenant` at `now`: refused when this node's
    /// active calls plus the others' reach `max_concurrent_calls`, or when the attempt
    /// rate is used up (see the module docs). Admitted, it counts as active until
    /// [`Admission::release`].
    pub fn admit(
        &mut self,
        tenant: &Id,
        quotas: &Quotas,
        others: OthersLoad,
        now: Instant,
    ) -> Result<(), Refusal> {
        let slot = self.slot(now);
        let max_rate = u64::from(quotas.max_call_attempts_per_sec);
        let remaining = max_rate.saturating_sub(others.attempts_per_sec.into()) * ATTEMPT;
        let share = max_rate * ATTEMPT / (1 + u64::from(others.nodes));
        let rate = remaining.max(share);
        let capacity = if rate == 0 { 0 } else { rate.max(ATTEMPT) };
        let calls = self
            .tenants
            .entry(tenant.clone())
            .or_insert_with(|| TenantCalls {
                active: 0,
                credit: capacity,
                refilled_at: now,
                rate,
                capacity,
                window: [(0, 0); SLOTS],
                published_quota: None,
            });
        if calls.published_quota != Some(quotas.max_concurrent_calls) {
            if calls.published_quota.is_none() {
                // The refusal counter exists from 0 on, so Prometheus' increase() sees
                // the tenant's first refusal (a series born at 1 shows no increase).
                metrics::counter!(
                    crate::cdr::metrics::CALLS_REJECTED_TOTAL,
                    "tenant" => tenant.to_string(),
                    "reason" => "quota"
                )
                .increment(0);
            }
            calls.published_quota = Some(quotas.max_concurrent_calls);
            metrics::gauge!("tongdai_tenant_quota_calls", "tenant" => tenant.to_string())
                .set(f64::from(quotas.max_concurrent_calls));
        }
        // Credit earned so far accrued at the old rate; from now on at the new one. Room
        // that grew (a raised quota, others that went quiet) is there at once.
        calls.refill(now);
        calls.credit = calls
            .credit
            .saturating_add(capacity.saturating_sub(calls.capacity))
            .min(capacity);
        calls.rate = rate;
        calls.capacity = capacity;

        let limit = quotas.max_concurrent_calls;
        if u64::from(calls.active) + u64::from(others.active_calls) >= u64::from(limit) {
            return Err(Refusal::Concurrent { limit });
        }
        if calls.credit < ATTEMPT {
            return Err(Refusal::Rate {
                limit: quotas.max_call_attempts_per_sec,
            });
        }
        calls.credit -= ATTEMPT;
        calls.active += 1;
        calls.count_attempt(slot);
        Ok(())
    }

    /// The call admitted for `tenant` ended.
    pub fn release(&mut self, tenant: &Id) {
        if let Some(calls) = self.tenants.get_mut(tenant) {
            calls.active = calls.active.saturating_sub(1);
        }
    }

    /// Per tenant with calls or recent attempts: (tenant, active calls, attempts
    /// admitted in the last second), by tenant id. Forgets tenants with neither whose
    /// bucket has refilled (nothing about them is left to remember).
    pub fn load(&mut self, now: Instant) -> Vec<(Id, u32, u32)> {
        let slot = self.slot(now);
        self.tenants.retain(|_, calls| {
            calls.refill(now);
            calls.active > 0
                || calls.attempts_in_last_second(slot) > 0
                || calls.credit < calls.capacity
        });
        let mut out: Vec<(Id, u32, u32)> = self
            .tenants
            .iter()
            .map(|(t, c)| (t.clone(), c.active, c.attempts_in_last_second(slot)))
            .filter(|(_, active, attempts)| *active > 0 || *attempts > 0)
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// What the load reporter reads: `admission`'s load now, as report entries.
pub fn load_source(
    admission: Arc<Mutex<Admission>>,
) -> impl Fn() -> Vec<TenantLoad> + Send + Sync + 'static {
    move || {
        admission
            .lock()
            .load(Instant::now())
            .into_iter()
            .map(|(tenant, active_calls, attempts_per_sec)| TenantLoad {
                tenant,
                active_calls,
                attempts_per_sec,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> Id {
        Id::new("acme").expect("valid")
    }

    fn quotas(max_concurrent_calls: u32, max_call_attempts_per_sec: u32) -> Quotas {
        Quotas {
            max_concurrent_calls,
            max_call_attempts_per_sec,
            max_registrations: 10,
        }
    }

    fn others(active_calls: u32, attempts_per_sec: u32, nodes: u32) -> OthersLoad {
        OthersLoad {
            active_calls,
            attempts_per_sec,
            nodes,
        }
    }

    /// Simulated time: `ms` after a fixed base.
    struct Clock(Instant);

    impl Clock {
        fn at(&self, ms: u64) -> Instant {
            self.0 + Duration::from_millis(ms)
        }
    }

    /// How many of `n` attempts at `now` are admitted (each admitted call released at
    /// once, so only the rate limits).
    fn admitted(a: &mut Admission, q: &Quotas, o: OthersLoad, now: Instant, n: u32) -> u32 {
        let mut ok = 0;
        for _ in 0..n {
            if a.admit(&acme(), q, o, now).is_ok() {
                a.release(&acme());
                ok += 1;
            }
        }
        ok
    }

    #[test]
    fn a_burst_up_to_the_rate_then_the_bucket_refills_at_the_rate() {
        let clock = Clock(Instant::now());
        let mut a = Admission::new();
        let q = quotas(1000, 5);
        assert_eq!(
            admitted(&mut a, &q, OthersLoad::default(), clock.at(0), 20),
            5
        );
        assert_eq!(
            a.admit(&acme(), &q, OthersLoad::default(), clock.at(0)),
            Err(Refusal::Rate { limit: 5 })
        );
        // 5/s: one more every 200 ms.
        assert_eq!(
            admitted(&mut a, &q, OthersLoad::default(), clock.at(199), 5),
            0
        );
        assert_eq!(
            admitted(&mut a, &q, OthersLoad::default(), clock.at(200), 5),
            1
        );
        assert_eq!(
            admitted(&mut a, &q, OthersLoad::default(), clock.at(600), 5),
            2
        );
        // A quiet spell refills one second's worth, no more.
        assert_eq!(
            admitted(&mut a, &q, OthersLoad::default(), clock.at(60_000), 20),
            5
        );
    }

    #[test]
    fn the_others_attempts_reduce_the_rate_down_to_an_even_share() {
        let clock = Clock(Instant::now());
        let q = quotas(1000, 10);
        // Three others use 6/s: 4 left here (more than a quarter).
        let mut a = Admission::new();
        assert_eq!(admitted(&mut a, &q, others(0, 6, 3), clock.at(0), 20), 4);
        assert_eq!(admitted(&mut a, &q, others(0, 6, 3), clock.at(250), 20), 1);
        // One other uses 6/s: this node still gets its even half.
        let mut a = Admission::new();
        assert_eq!(admitted(&mut a, &q, others(0, 6, 1), clock.at(0), 20), 5);
        // The others went quiet: their room is here at once.
        assert_eq!(
            admitted(&mut a, &q, OthersLoad::default(), clock.at(0), 20),
            5
        );
        // Others use all of it: one other node leaves this one half.
        let mut a = Admission::new();
        assert_eq!(admitted(&mut a, &q, others(0, 10, 1), clock.at(0), 20), 5);
        assert_eq!(
            admitted(&mut a, &q, others(0, 10, 1), clock.at(1000), 20),
            5
        );
        // Three others over the limit: a quarter, 2.5/s, exactly (one per 400 ms; half
        // an attempt was left after the burst).
        let mut a = Admission::new();
        let o = others(0, 40, 3);
        assert_eq!(admitted(&mut a, &q, o, clock.at(0), 20), 2);
        assert_eq!(admitted(&mut a, &q, o, clock.at(199), 20), 0);
        assert_eq!(admitted(&mut a, &q, o, clock.at(200), 20), 1);
        assert_eq!(admitted(&mut a, &q, o, clock.at(4400), 20), 2);
    }

    #[test]
    fn a_share_below_one_per_second_still_admits_one_call_at_a_time() {
        let clock = Clock(Instant::now());
        let mut a = Admission::new();
        let q = quotas(1000, 1);
        let o = others(0, 1, 1);
        assert_eq!(admitted(&mut a, &q, o, clock.at(0), 3), 1);
        assert_eq!(admitted(&mut a, &q, o, clock.at(1999), 3), 0);
        assert_eq!(admitted(&mut a, &q, o, clock.at(2000), 3), 1);
    }

    #[test]
    fn concurrent_calls_count_the_others_and_free_up_on_release() {
        let clock = Clock(Instant::now());
        let mut a = Admission::new();
        let q = quotas(3, 100);
        let o = others(2, 0, 1);
        assert_eq!(a.admit(&acme(), &q, o, clock.at(0)), Ok(()));
        let refused = a.admit(&acme(), &q, o, clock.at(0));
        assert_eq!(refused, Err(Refusal::Concurrent { limit: 3 }));
        // The others' calls ended: room for two more here.
        assert_eq!(a.admit(&acme(), &q, others(0, 0, 0), clock.at(1)), Ok(()));
        assert_eq!(a.admit(&acme(), &q, others(0, 0, 0), clock.at(1)), Ok(()));
        assert!(a.admit(&acme(), &q, others(0, 0, 0), clock.at(1)).is_err());
        a.release(&acme());
        assert_eq!(a.admit(&acme(), &q, others(0, 0, 0), clock.at(2)), Ok(()));
        // A refusal for concurrency spends no attempt.
        assert_eq!(a.load(clock.at(2))[0].2, 4);
        // Other tenants are not affected.
        let beta = Id::new("beta").expect("valid");
        assert_eq!(a.admit(&beta, &q, others(0, 0, 0), clock.at(2)), Ok(()));
    }

    #[test]
    fn zero_means_no_calls() {
        let clock = Clock(Instant::now());
        let mut a = Admission::new();
        let none = OthersLoad::default();
        assert_eq!(
            a.admit(&acme(), &quotas(0, 10), none, clock.at(0)),
            Err(Refusal::Concurrent { limit: 0 })
        );
        assert_eq!(
            a.admit(&acme(), &quotas(10, 0), none, clock.at(0)),
            Err(Refusal::Rate { limit: 0 })
        );
        assert_eq!(
            a.admit(&acme(), &quotas(10, 0), none, clock.at(60_000)),
            Err(Refusal::Rate { limit: 0 })
        );
        // A raised quota applies at once.
        assert_eq!(
            a.admit(&acme(), &quotas(10, 1), none, clock.at(60_000)),
            Ok(())
        );
    }

    #[test]
    fn refusals_say_when_to_retry_and_what_was_reached() {
        let c = Refusal::Concurrent { limit: 20 };
        let r = Refusal::Rate { limit: 5 };
        assert_eq!((c.retry_after_secs(), r.retry_after_secs()), (5, 1));
        assert_eq!(
            c.to_string(),
            "Tenant call quota reached (20 concurrent calls)"
        );
        assert_eq!(
            r.to_string(),
            "Tenant call quota reached (5 call attempts/s)"
        );
    }

    #[test]
    fn the_load_report_has_active_calls_and_attempts_of_the_last_second() {
        let clock = Clock(Instant::now());
        let mut a = Admission::new();
        let q = quotas(100, 100);
        let none = OthersLoad::default();
        let beta = Id::new("beta").expect("valid");
        assert_eq!(a.load(clock.at(0)), []);
        for ms in [0, 300, 900] {
            a.admit(&beta, &q, none, clock.at(ms)).expect("admitted");
        }
        a.admit(&acme(), &q, none, clock.at(950)).expect("admitted");
        a.release(&beta);
        a.release(&beta);
        assert_eq!(
            a.load(clock.at(950)),
            [(acme(), 1, 1), (beta.clone(), 1, 3)]
        );
        // The attempt at 0 ms leaves the window after a second, the one at 300 ms next.
        assert_eq!(a.load(clock.at(1099))[1], (beta.clone(), 1, 2));
        assert_eq!(a.load(clock.at(1399))[1], (beta.clone(), 1, 1));
        a.release(&beta);
        a.release(&acme());
        // Releasing what was never admitted changes nothing.
        a.release(&beta);
        a.release(&Id::new("nobody").expect("valid"));
        assert_eq!(a.load(clock.at(1500)), [(acme(), 0, 1), (beta, 0, 1)]);
        assert_eq!(a.load(clock.at(2000)), []);
        assert!(a.tenants.is_empty(), "idle tenants are forgotten");
    }

    #[test]
    fn a_forgotten_tenant_comes_back_with_the_bucket_it_would_have() {
        let clock = Clock(Instant::now());
        let mut a = Admission::new();
        let q = quotas(100, 1);
        let o = others(0, 5, 1);
        assert_eq!(admitted(&mut a, &q, o, clock.at(0), 2), 1);
        // Half a call per second: not refilled at 1.5 s although the window is empty,
        // so the tenant is kept and still refused.
        assert_eq!(a.load(clock.at(1500)), []);
        assert_eq!(admitted(&mut a, &q, o, clock.at(1500), 2), 0);
        assert_eq!(admitted(&mut a, &q, o, clock.at(2000), 2), 1);
    }

    #[test]
    fn a_tenant_first_seen_exports_its_quota_and_a_refusal_count_from_zero() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let mut a = Admission::new();
            let none = OthersLoad::default();
            a.admit(&acme(), &quotas(3, 10), none, Instant::now())
                .expect("admitted");
        });
        let text = handle.render();
        assert!(
            text.contains("tongdai_tenant_quota_calls{tenant=\"acme\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("tongdai_calls_rejected_total{tenant=\"acme\",reason=\"quota\"} 0\n"),
            "{text}"
        );
    }

    #[test]
    fn the_source_turns_the_load_into_report_entries() {
        let admission = Arc::new(Mutex::new(Admission::new()));
        admission
            .lock()
            .admit(
                &acme(),
                &quotas(5, 5),
                OthersLoad::default(),
                Instant::now(),
            )
            .expect("admitted");
        let source = load_source(admission.clone());
        assert_eq!(
            source(),
            [TenantLoad {
                tenant: acme(),
                active_calls: 1,
                attempts_per_sec: 1,
            }]
        );
    }
}
