//! tongdai control plane: the Raft-replicated, deterministic state machine that holds
//! registrations, tenants, numbers, extensions and hunt groups, and steers the nodes.
//!
//! Not built yet: until the control-plane issue lands, nodes keep registrations in
//! memory (`tongdai_node::registrar::MemoryLocationService`).
