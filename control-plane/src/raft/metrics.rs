//! The Raft state of a replica as Prometheus gauges, for the control-plane dashboard and
//! the no-leader and replica-lagging alerts. Each replica exports its own view; Prometheus'
//! `instance` label tells them apart, so the gauges carry no labels.
//!
//! [`RaftGauges::of`] is the pure part: openraft's [`RaftMetrics`] plus the committed
//! index the log store last saved (openraft 0.9's metrics have no commit index; a
//! follower learns it only through `save_committed`). [`run`] follows both and publishes.

use metrics::{Unit, describe_gauge, gauge};
use openraft::{RaftMetrics, ServerState};
use tokio::sync::watch;

use super::{Member, NodeId};

/// 1 on the replica that is the Raft leader, else 0.
pub const IS_LEADER: &str = "tongdai_control_plane_is_leader";
/// The replica's current Raft term.
pub const TERM: &str = "tongdai_control_plane_term";
/// The highest log index the replica knows to be committed.
pub const COMMITTED_INDEX: &str = "tongdai_control_plane_committed_index";
/// The highest log index the replica applied to its state machine.
pub const APPLIED_INDEX: &str = "tongdai_control_plane_applied_index";

/// One replica's Raft state as exported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RaftGauges {
    pub is_leader: bool,
    pub term: u64,
    pub committed_index: u64,
    pub applied_index: u64,
}

impl RaftGauges {
    /// The gauges for openraft's metrics and the committed index the store last saved.
    /// No log yet counts as index 0.
    pub fn of(metrics: &RaftMetrics<NodeId, Member>, committed: Option<u64>) -> RaftGauges {
        let applied_index = metrics.last_applied.map_or(0, |l| l.index);
        RaftGauges {
            is_leader: metrics.state == ServerState::Leader,
            term: metrics.current_term,
            // Whatever is applied is committed. The saved index can be behind it when a
            // follower installed a snapshot (no commit is saved for that).
            committed_index: committed.unwrap_or(0).max(applied_index),
            applied_index,
        }
    }

    /// What a replica whose Raft stopped exports: the last indexes, and not leading.
    pub fn stopped(self) -> RaftGauges {
        RaftGauges {
            is_leader: false,
            ..self
        }
    }

    /// Sets the gauges in the process' metrics recorder.
    pub fn publish(&self) {
        gauge!(IS_LEADER).set(if self.is_leader { 1.0 } else { 0.0 });
        // Exact up to 2^53, far beyond any term or log index reached.
        #[allow(clippy::cast_precision_loss)]
        {
            gauge!(TERM).set(self.term as f64);
            gauge!(COMMITTED_INDEX).set(self.committed_index as f64);
            gauge!(APPLIED_INDEX).set(self.applied_index as f64);
        }
    }
}

/// Help text for the gauges, in the installed recorder.
pub fn describe() {
    describe_gauge!(
        IS_LEADER,
        Unit::Count,
        "1 if this control-plane replica is the Raft leader, else 0"
    );
    describe_gauge!(TERM, Unit::Count, "The replica's current Raft term");
    describe_gauge!(
        COMMITTED_INDEX,
        Unit::Count,
        "The highest Raft log index this replica knows to be committed"
    );
    describe_gauge!(
        APPLIED_INDEX,
        Unit::Count,
        "The highest Raft log index this replica applied to its state machine"
    );
}

/// Publishes the gauges now and whenever openraft's metrics or the committed index
/// change, and sends them on `out`; returns when Raft stops, after publishing
/// [`RaftGauges::stopped`].
pub(super) async fn run(
    mut raft: watch::Receiver<RaftMetrics<NodeId, Member>>,
    mut committed: watch::Receiver<Option<u64>>,
    out: watch::Sender<RaftGauges>,
) {
    describe();
    let mut last: Option<RaftGauges> = None;
    loop {
        let now = RaftGauges::of(&raft.borrow_and_update(), *committed.borrow_and_update());
        if last != Some(now) {
            now.publish();
            out.send_replace(now);
            last = Some(now);
        }
        tokio::select! {
            changed = raft.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            // The store lives as long as Raft; if it went first, Raft's end still ends this.
            Ok(()) = committed.changed() => {}
        }
    }
    let stopped = last.unwrap_or_default().stopped();
    stopped.publish();
    out.send_replace(stopped);
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, LogId};

    use super::*;

    fn log_id(term: u64, index: u64) -> Option<LogId<NodeId>> {
        Some(LogId::new(CommittedLeaderId::new(term, 1), index))
    }

    #[test]
    fn a_fresh_replica_is_all_zero() {
        let m = RaftMetrics::new_initial(1);
        assert_eq!(RaftGauges::of(&m, None), RaftGauges::default());
    }

    #[test]
    fn the_leader_exports_its_term_and_indexes() {
        let mut m = RaftMetrics::new_initial(2);
        m.state = ServerState::Leader;
        m.current_term = 7;
        m.current_leader = Some(2);
        m.last_applied = log_id(7, 40);
        m.last_log_index = Some(45);
        assert_eq!(
            RaftGauges::of(&m, Some(43)),
            RaftGauges {
                is_leader: true,
                term: 7,
                committed_index: 43,
                applied_index: 40,
            }
        );
    }

    #[test]
    fn followers_candidates_and_learners_are_not_leaders() {
        for state in [
            ServerState::Follower,
            ServerState::Candidate,
            ServerState::Learner,
            ServerState::Shutdown,
        ] {
            let mut m = RaftMetrics::new_initial(3);
            m.state = state;
            m.current_leader = Some(3);
            assert!(!RaftGauges::of(&m, None).is_leader, "{state:?}");
        }
    }

    #[test]
    fn the_committed_index_is_never_below_the_applied_one() {
        // A follower that installed a snapshot at 500 has saved no commit since 120.
        let mut m = RaftMetrics::new_initial(3);
        m.last_applied = log_id(4, 500);
        let g = RaftGauges::of(&m, Some(120));
        assert_eq!((g.committed_index, g.applied_index), (500, 500));
        let g = RaftGauges::of(&m, None);
        assert_eq!((g.committed_index, g.applied_index), (500, 500));
    }

    #[test]
    fn a_stopped_replica_keeps_its_indexes_and_stops_leading() {
        let g = RaftGauges {
            is_leader: true,
            term: 3,
            committed_index: 9,
            applied_index: 8,
        };
        assert_eq!(
            g.stopped(),
            RaftGauges {
                is_leader: false,
                ..g
            }
        );
    }
}
