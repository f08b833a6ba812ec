//! `tongdai ctl node ...`: SIP nodes as the control plane sees them.

use std::time::{Duration, Instant};

use clap::Subcommand;
use serde_json::Value;
use ureq::http::Method;

use super::CtlError;
use super::client::seg;
use super::exec::{Ctx, pretty};

#[derive(Debug, Subcommand)]
pub enum NodeCmd {
    /// Drains a node: it stops taking new calls (503 with Retry-After, readiness false),
    /// keeps its live calls until they end or its grace period (calls.drain_grace_secs)
    /// passes, ships its records and exits 0. Waits until the node took the request.
    Drain {
        /// The node's name (node.name in its config).
        node: String,
        /// Return once the request is committed, without waiting for the node to take it.
        #[arg(long)]
        no_wait: bool,
        /// How long to wait for the node to take the request.
        #[arg(long, default_value_t = 15, value_name = "SECS")]
        wait_secs: u64,
    },
    /// The node's drain request of the last minute, if any: pending or accepted.
    DrainStatus {
        /// The node's name (node.name in its config).
        node: String,
    },
}

impl Ctx<'_> {
    pub(super) fn node(&mut self, cmd: NodeCmd) -> Result<(), CtlError> {
        match cmd {
            NodeCmd::Drain {
                node,
                no_wait,
                wait_secs,
            } => {
                let path = drain_path(&node);
                let mut v = self.call(Method::POST, &path, None)?;
                let deadline = Instant::now() + Duration::from_secs(wait_secs);
                while !no_wait && v["state"] != "accepted" {
                    if Instant::now() >= deadline {
                        return Err(CtlError::Transport(format!(
                            "node {node} did not take the drain request within {wait_secs} s: \
                             is a node with node.name = {node:?} running and connected to the \
                             control plane? (the request lapses after a minute)"
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(200));
                    v = self.call(Method::GET, &path, None)?;
                }
                self.drain_result(&v)
            }
            NodeCmd::DrainStatus { node } => {
                let v = self.call(Method::GET, &drain_path(&node), None)?;
                self.drain_result(&v)
            }
        }
    }

    fn drain_result(&mut self, v: &Value) -> Result<(), CtlError> {
        if self.json {
            writeln!(self.out, "{}", pretty(v))?;
            return Ok(());
        }
        let node = v["node"].as_str().unwrap_or("?");
        if v["state"] == "accepted" {
            writeln!(
                self.out,
                "node {node} is draining: new calls get 503; it exits when its last call ends \
                 (or its grace period passes)"
            )?;
        } else {
            writeln!(
                self.out,
                "drain request {} for node {node} is pending: the node has not taken it yet",
                v["seq"]
            )?;
        }
        Ok(())
    }
}

fn drain_path(node: &str) -> String {
    format!("/v1/cluster/nodes/{}/drain", seg(node))
}
