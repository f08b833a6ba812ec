//! Aligned-column tables of the API's JSON, one layout per resource.

use std::io::{self, Write};

use serde_json::Value;

/// A table: a header and rows of cells, printed with columns padded to their widest
/// cell.
#[derive(Debug)]
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Table {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: Vec<&str>, out: &mut dyn Write| -> io::Result<()> {
            let last = cells.len().saturating_sub(1);
            let mut s = String::new();
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                s.push_str(cell);
                if i < last {
                    let pad = w - cell.chars().count() + 2;
                    s.extend(std::iter::repeat_n(' ', pad));
                }
            }
            writeln!(out, "{}", s.trim_end())
        };
        line(self.header.clone(), out)?;
        for row in &self.rows {
            line(row.iter().map(String::as_str).collect(), out)?;
        }
        Ok(())
    }
}

/// A cell: strings as they are, numbers as digits, nothing as `-`.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => sanitize(s),
        other => other.to_string(),
    }
}

/// Control characters from the server would garble the terminal.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// `extension:1001`, `external:+84901234567`.
fn destination(v: &Value) -> String {
    let kind = v["type"].as_str().unwrap_or("?").replace('_', "-");
    let target = if v["type"] == "external" {
        &v["number"]
    } else {
        &v["id"]
    };
    format!("{kind}:{}", cell(target))
}

/// The layout for a kind of resource.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Tenant,
    Number,
    Extension,
    HuntGroup,
    Queue,
    Agent,
    Trunk,
    Token,
    CreatedToken,
    Registration,
    Member,
}

impl Kind {
    fn header(self) -> &'static [&'static str] {
        match self {
            Kind::Tenant => &[
                "ID",
                "NAME",
                "MAX_CALLS",
                "MAX_CALL_RATE",
                "MAX_REGISTRATIONS",
                "CODECS",
                "RECORDING",
                "OUTBOUND_TRUNK",
                "CALLER_ID",
            ],
            Kind::Number => &["DIGITS", "KIND", "TARIFF_BAND", "DESTINATION", "RECORDING"],
            Kind::Extension => &["EXT", "NAME", "FORWARD"],
            Kind::HuntGroup => &["ID", "STRATEGY", "RING_SECS", "MEMBERS", "NO_ANSWER"],
            Kind::Queue => &["ID", "NAME", "STRATEGY", "MAX_WAIT_SECS", "MAX_LEN"],
            Kind::Agent => &["EXTENSION", "STATE", "PAUSE_REASON", "SKILLS"],
            Kind::Trunk => &[
                "ID",
                "ADDRESS",
                "TRANSPORT",
                "TRUSTED_SOURCES",
                "MAX_CALLS",
                "FAILOVER",
                "REGISTRATION",
            ],
            Kind::Token => &["TENANT", "ID"],
            Kind::CreatedToken => &["TENANT", "ID", "TOKEN"],
            Kind::Registration => &[
                "TENANT",
                "EXTENSION",
                "CONTACT",
                "SOURCE",
                "TRANSPORT",
                "EXPIRES_IN",
            ],
            Kind::Member => &["ID", "ROLE", "RAFT_ADDR", "API_ADDR", "LAG"],
        }
    }

    fn row(self, v: &Value) -> Vec<String> {
        let f = |k: &str| cell(&v[k]);
        match self {
            Kind::Tenant => vec![
                f("id"),
                f("name"),
                cell(&v["quotas"]["max_concurrent_calls"]),
                cell(&v["quotas"]["max_call_attempts_per_sec"]),
                cell(&v["quotas"]["max_registrations"]),
                join(&v["calls"]["codecs"]),
                cell(&v["calls"]["recording"]),
                cell(&v["calls"]["outbound_trunk"]),
                cell(&v["calls"]["caller_id"]),
            ],
            Kind::Number => vec![
                f("digits"),
                f("kind"),
                f("tariff_band"),
                destination(&v["destination"]),
                f("recording"),
            ],
            Kind::Extension => {
                let fwd = &v["forward_to_mobile"];
                let forward = if fwd.is_null() {
                    "-".into()
                } else {
                    let when: Vec<String> = fwd["when"]
                        .as_array()
                        .map(|w| w.iter().map(cell).collect())
                        .unwrap_or_default();
                    format!("{} ({})", cell(&fwd["number"]), when.join(","))
                };
                vec![f("ext"), f("display_name"), forward]
            }
            Kind::HuntGroup => vec![
                f("id"),
                f("strategy"),
                f("ring_secs"),
                join(&v["members"]),
                destination(&v["no_answer"]),
            ],
            Kind::Queue => vec![
                f("id"),
                f("name"),
                f("strategy"),
                f("max_wait_secs"),
                f("max_len"),
            ],
            Kind::Agent => {
                let skills: Vec<String> = v["skills"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, l)| format!("{}={}", sanitize(k), cell(l)))
                            .collect()
                    })
                    .unwrap_or_default();
                let skills = if skills.is_empty() {
                    "-".into()
                } else {
                    skills.join(",")
                };
                vec![f("extension"), f("state"), f("pause_reason"), skills]
            }
            Kind::Trunk => {
                let reg = &v["registration"];
                let registration = if reg.is_null() {
                    "-".into()
                } else {
                    format!(
                        "{}@{} ({}s)",
                        cell(&reg["username"]),
                        cell(&reg["domain"]),
                        cell(&reg["expires_secs"])
                    )
                };
                let sources = match v["trusted_sources"].as_array() {
                    Some(a) if !a.is_empty() => join(&v["trusted_sources"]),
                    _ => "-".into(),
                };
                vec![
                    f("id"),
                    f("address"),
                    f("transport"),
                    sources,
                    f("max_concurrent_calls"),
                    f("failover"),
                    registration,
                ]
            }
            Kind::Token => vec![f("tenant"), f("id")],
            Kind::CreatedToken => vec![f("tenant"), f("id"), f("token")],
            Kind::Registration => vec![
                f("tenant"),
                f("extension"),
                f("contact"),
                f("source"),
                f("transport"),
                format!("{}s", cell(&v["expires_in_secs"])),
            ],
            Kind::Member => vec![f("id"), f("role"), f("raft_addr"), f("api_addr"), f("lag")],
        }
    }

    /// A table of `value`: an array of resources, or one.
    pub fn table(self, value: &Value) -> Table {
        let mut t = Table::new(self.header());
        match value.as_array() {
            Some(items) => items.iter().for_each(|v| t.push(self.row(v))),
            None => t.push(self.row(value)),
        }
        t
    }
}

fn join(v: &Value) -> String {
    v.as_array()
        .map(|a| a.iter().map(cell).collect::<Vec<_>>().join(","))
        .unwrap_or_else(|| "-".into())
}

/// `cluster status`: the answering replica, then its members.
pub fn cluster_status(v: &Value, out: &mut dyn Write) -> io::Result<()> {
    let mut head = Table::new(&[
        "NODE",
        "STATE",
        "TERM",
        "LEADER",
        "LAST_APPLIED",
        "LAST_LOG",
        "REVISION",
    ]);
    head.push(vec![
        cell(&v["id"]),
        cell(&v["state"]),
        cell(&v["term"]),
        cell(&v["leader"]),
        cell(&v["last_applied"]),
        cell(&v["last_log_index"]),
        cell(&v["revision"]),
    ]);
    head.write(out)?;
    writeln!(out)?;
    Kind::Member.table(&v["members"]).write(out)
}
