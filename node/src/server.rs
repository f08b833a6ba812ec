//! The SIP server: binds the transports and runs the registrar until shut down.
//!
//! Placeholder for the seam between the CLI and the SIP edge; the real implementation
//! replaces this file.

use std::future::Future;

use crate::config::Config;
use crate::telemetry::Health;

/// Runs the SIP node until `shutdown` completes, then drains and returns.
///
/// Contract with the binary: set `health` to [`HealthState::Ok`](crate::telemetry::HealthState)
/// once the listeners are bound; the binary sets it to `Draining` before `shutdown` resolves.
/// Returning `Err` makes the process exit with code 1 and print the error.
pub async fn run(
    config: Config,
    health: Health,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let _ = (config, health, shutdown);
    Err(anyhow::anyhow!("SIP server not built yet"))
}
