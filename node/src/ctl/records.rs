//! `tongdai ctl cdr list` and `tongdai ctl recording list|get|delete`: a tenant's call
//! records through the admin API.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::Value;
use tongdai_control_plane::api::records::{format_time, parse_time, time::EXPECTED};
use ureq::http::Method;

use super::CtlError;
use super::client::seg;
use super::exec::Ctx;
use super::table::Table;

#[derive(Debug, Subcommand)]
pub enum CdrCmd {
    /// A tenant's CDRs, newest first (needs --tenant).
    List {
        /// Calls set up at or after: RFC 3339 (2026-11-23T00:00:00Z), a date (2026-11-23),
        /// Unix milliseconds, or an age such as 90s, 30m, 1h, 7d, 2w.
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Calls set up before; same forms as --since.
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// At most this many (1-10000; the API's default is 100).
        #[arg(long)]
        limit: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RecordingCmd {
    /// A tenant's recordings (needs --tenant).
    List,
    /// A recording's metadata, or with --output its audio (WAV).
    Get {
        id: String,
        /// Write the audio to FILE ("-" for standard output) instead of showing metadata.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Deletes a recording (audio and metadata).
    Delete { id: String },
}

/// `--since`/`--until` to Unix milliseconds; `now_ms` is the reference for ages.
pub fn time_arg(flag: &str, text: &str, now_ms: u64) -> Result<u64, CtlError> {
    if let Some(age) = age_ms(text) {
        return Ok(now_ms.saturating_sub(age));
    }
    parse_time(text).map_err(|problem| {
        CtlError::Usage(format!(
            "{flag} {text:?} {problem}; expected {EXPECTED}, or an age such as 30m, 1h, 7d"
        ))
    })
}

/// `90s`, `30m`, `1h`, `7d`, `2w` in milliseconds.
fn age_ms(text: &str) -> Option<u64> {
    let text = text.trim();
    let unit = match text.chars().last()? {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        'w' => 7 * 86_400_000,
        _ => return None,
    };
    let n: u64 = text[..text.len() - 1].parse().ok()?;
    n.checked_mul(unit)
}

impl Ctx<'_> {
    fn records_base(&self, what: &str) -> Result<String, CtlError> {
        let tenant = self.tenant.as_deref().ok_or_else(|| {
            CtlError::Usage(format!(
                "{what} needs --tenant (or TONGDAI_TENANT): records are per tenant"
            ))
        })?;
        Ok(format!("/v1/tenants/{}", seg(tenant)))
    }

    fn print_json(&mut self, v: &Value) -> Result<(), CtlError> {
        let text = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
        writeln!(self.out, "{text}")?;
        Ok(())
    }

    pub(super) fn cdr(&mut self, cmd: CdrCmd) -> Result<(), CtlError> {
        let CdrCmd::List {
            since,
            until,
            limit,
        } = cmd;
        let base = self.records_base("cdr list")?;
        let now = crate::cdr::now_ms();
        let mut query = Vec::new();
        if let Some(since) = since {
            query.push(format!("since={}", time_arg("--since", &since, now)?));
        }
        if let Some(until) = until {
            query.push(format!("until={}", time_arg("--until", &until, now)?));
        }
        if let Some(limit) = limit {
            query.push(format!("limit={limit}"));
        }
        let path = if query.is_empty() {
            format!("{base}/cdrs")
        } else {
            format!("{base}/cdrs?{}", query.join("&"))
        };
        let v = self
            .client
            .send(Method::GET, &path, None)?
            .unwrap_or(Value::Null);
        if self.json {
            return self.print_json(&v);
        }
        cdr_table(&v).write(self.out)?;
        Ok(())
    }

    pub(super) fn recording(&mut self, cmd: RecordingCmd) -> Result<(), CtlError> {
        let base = format!("{}/recordings", self.records_base("recording")?);
        match cmd {
            RecordingCmd::List => {
                let v = self
                    .client
                    .send(Method::GET, &base, None)?
                    .unwrap_or(Value::Null);
                if self.json {
                    return self.print_json(&v);
                }
                recording_table(&v).write(self.out)?;
            }
            RecordingCmd::Get { id, output: None } => {
                let v = self
                    .client
                    .send(Method::GET, &format!("{base}/{}", seg(&id)), None)?
                    .unwrap_or(Value::Null);
                if self.json {
                    return self.print_json(&v);
                }
                recording_table(&v).write(self.out)?;
            }
            RecordingCmd::Get {
                id,
                output: Some(file),
            } => {
                let audio = self
                    .client
                    .get_bytes(&format!("{base}/{}/audio", seg(&id)))?;
                if file.as_os_str() == "-" {
                    self.out.write_all(&audio)?;
                } else {
                    std::fs::write(&file, &audio).map_err(|e| {
                        CtlError::Usage(format!("cannot write {}: {e}", file.display()))
                    })?;
                    if !self.json {
                        writeln!(self.out, "wrote {} ({} bytes)", file.display(), audio.len())?;
                    }
                }
            }
            RecordingCmd::Delete { id } => {
                self.client
                    .send(Method::DELETE, &format!("{base}/{}", seg(&id)), None)?;
                if !self.json {
                    writeln!(self.out, "deleted recording {id}")?;
                }
            }
        }
        Ok(())
    }
}

/// A cell: text as it is (control characters replaced), `-` for nothing.
fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect(),
        other => other.to_string(),
    }
}

fn items(v: &Value) -> Vec<&Value> {
    match v.as_array() {
        Some(items) => items.iter().collect(),
        None if v.is_object() => vec![v],
        None => Vec::new(),
    }
}

fn secs(v: &Value) -> String {
    v.as_u64().map_or_else(|| "-".into(), |s| format!("{s}s"))
}

fn cdr_table(v: &Value) -> Table {
    let mut t = Table::new(&[
        "TIME",
        "DIRECTION",
        "CALLER",
        "CALLEE",
        "DISPOSITION",
        "DURATION",
        "BILLABLE",
        "MOS",
    ]);
    for c in items(v) {
        let time = c["setup_ms"]
            .as_u64()
            .map_or_else(|| "-".into(), format_time);
        // The worse direction's MOS, of those that carried audio.
        let mos = ["caller", "callee"]
            .iter()
            .map(|side| &c["quality"][side])
            .filter(|q| q["packets"].as_u64().is_some_and(|p| p > 0))
            .filter_map(|q| q["mos"].as_f64())
            .reduce(f64::min)
            .map_or_else(|| "-".into(), |m| format!("{m:.2}"));
        t.push(vec![
            time,
            text(&c["direction"]),
            text(&c["caller"]),
            text(&c["callee"]),
            text(&c["disposition"]),
            secs(&c["duration_secs"]),
            secs(&c["billable_secs"]),
            mos,
        ]);
    }
    t
}

fn recording_table(v: &Value) -> Table {
    let mut t = Table::new(&["ID", "STARTED", "DURATION", "BYTES", "COMPLETE", "CALL_ID"]);
    for r in items(v) {
        t.push(vec![
            text(&r["id"]),
            r["started_unix_ms"]
                .as_u64()
                .map_or_else(|| "-".into(), format_time),
            r["duration_ms"].as_u64().map_or_else(
                || "-".into(),
                |ms| format!("{}.{:03}s", ms / 1000, ms % 1000),
            ),
            text(&r["bytes"]),
            text(&r["complete"]),
            text(&r["call_id"]),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_ages() {
        let now = 1_795_507_200_000;
        assert_eq!(time_arg("--since", "1h", now).ok(), Some(now - 3_600_000));
        assert_eq!(time_arg("--since", "90s", now).ok(), Some(now - 90_000));
        assert_eq!(
            time_arg("--since", "2w", now).ok(),
            Some(now - 1_209_600_000)
        );
        assert_eq!(
            time_arg("--since", "2026-11-24T08:00:00Z", 0).ok(),
            Some(now)
        );
        assert_eq!(time_arg("--since", "12345", 0).ok(), Some(12_345));
        let e = time_arg("--since", "yesterday", now).expect_err("bad");
        assert_eq!(e.exit_code(), 2);
        let message = e.to_string();
        assert!(
            message.contains("--since \"yesterday\"") && message.contains("30m"),
            "{message}"
        );
        assert!(time_arg("--until", "5y", now).is_err());
        assert!(time_arg("--until", "99999999999999999999h", now).is_err());
    }
}
