//! End-to-end test harness: starts the real `tongdai` binary and real SIP peers.
