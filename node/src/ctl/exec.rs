//! What each `tongdai ctl` subcommand sends and prints.

use std::io::{BufRead as _, Write};

use serde_json::{Map, Value, json};
use ureq::http::Method;

use super::CtlError;
use super::args::{
    AgentCmd, AgentState, ClusterCmd, CredentialArgs, ExtensionCmd, ForwardArgs, ForwardWhen,
    HuntGroupCmd, NumberCmd, QueueArgs, QueueCmd, QueueStrategy, QuotaArgs, RegistrationCmd,
    Resource, RingStrategy, TenantCmd, TokenCmd,
};
use super::client::{Client, seg};
use super::table::{self, Kind};
use super::trunks::{call_settings, clear_call_settings, recording};

/// One command's context: the API, the output and the global flags.
pub(super) struct Ctx<'a> {
    pub client: Client,
    pub json: bool,
    pub tenant: Option<String>,
    pub out: &'a mut dyn Write,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("client", &self.client)
            .field("json", &self.json)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl Ctx<'_> {
    pub fn run(&mut self, resource: Resource) -> Result<(), CtlError> {
        match resource {
            Resource::Tenant(cmd) => self.tenant_cmd(cmd),
            Resource::Number(cmd) => self.number(cmd),
            Resource::Extension(cmd) => self.extension(cmd),
            Resource::HuntGroup(cmd) => self.hunt_group(cmd),
            Resource::Queue(cmd) => self.queue(cmd),
            Resource::Agent(cmd) => self.agent(cmd),
            Resource::Trunk(cmd) => self.trunk(cmd),
            Resource::Token(cmd) => self.token(cmd),
            Resource::Registration(RegistrationCmd::List) => {
                let path = match &self.tenant {
                    Some(t) => format!("/v1/tenants/{}/registrations", seg(t)),
                    None => "/v1/registrations".into(),
                };
                let v = self.call(Method::GET, &path, None)?;
                self.show(Kind::Registration, &v)
            }
            Resource::Cluster(cmd) => self.cluster(cmd),
            Resource::Node(cmd) => self.node(cmd),
            Resource::Cdr(cmd) => self.cdr(cmd),
            Resource::Recording(cmd) => self.recording(cmd),
        }
    }

    /// `/v1/tenants/<tenant>/<what>`; the tenant is required.
    pub(super) fn scoped(&self, what: &str) -> Result<String, CtlError> {
        let tenant = self.tenant.as_deref().ok_or_else(|| {
            CtlError::Usage("this command needs --tenant (or TONGDAI_TENANT)".into())
        })?;
        Ok(format!("/v1/tenants/{}/{what}", seg(tenant)))
    }

    pub(super) fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CtlError> {
        Ok(self.client.send(method, path, body)?.unwrap_or(Value::Null))
    }

    pub(super) fn show(&mut self, kind: Kind, v: &Value) -> Result<(), CtlError> {
        if self.json {
            writeln!(self.out, "{}", pretty(v))?;
        } else {
            kind.table(v).write(self.out)?;
        }
        Ok(())
    }

    pub(super) fn list(&mut self, kind: Kind, path: &str) -> Result<(), CtlError> {
        let v = self.call(Method::GET, path, None)?;
        self.show(kind, &v)
    }

    pub(super) fn create(&mut self, kind: Kind, path: &str, body: &Value) -> Result<(), CtlError> {
        let v = self.call(Method::POST, path, Some(body))?;
        self.show(kind, &v)
    }

    /// Reads the resource, lets `change` edit it, writes it back whole.
    pub(super) fn update(
        &mut self,
        kind: Kind,
        path: &str,
        change: impl FnOnce(&mut Map<String, Value>) -> Result<(), CtlError>,
    ) -> Result<(), CtlError> {
        let mut current = self.call(Method::GET, path, None)?;
        let fields = current.as_object_mut().ok_or_else(|| {
            CtlError::Transport(format!(
                "{path}: the API answered something other than an object"
            ))
        })?;
        change(fields)?;
        let v = self.call(Method::PUT, path, Some(&current))?;
        self.show(kind, &v)
    }

    pub(super) fn delete(&mut self, path: &str, what: &str) -> Result<(), CtlError> {
        self.call(Method::DELETE, path, None)?;
        if !self.json {
            writeln!(self.out, "deleted {what}")?;
        }
        Ok(())
    }

    fn tenant_cmd(&mut self, cmd: TenantCmd) -> Result<(), CtlError> {
        match cmd {
            TenantCmd::List => self.list(Kind::Tenant, "/v1/tenants"),
            TenantCmd::Get { id } => self.list(Kind::Tenant, &format!("/v1/tenants/{}", seg(&id))),
            TenantCmd::Create {
                id,
                name,
                quotas,
                calls,
            } => {
                let mut body = json!({
                    "id": id,
                    "name": name,
                    "quotas": {
                        "max_concurrent_calls": quotas.max_calls.unwrap_or(100),
                        "max_call_attempts_per_sec": quotas.max_call_rate.unwrap_or(10),
                        "max_registrations": quotas.max_registrations.unwrap_or(100),
                    }
                });
                let mut settings = Map::new();
                call_settings(&mut settings, calls);
                if !settings.is_empty() {
                    body["calls"] = Value::Object(settings);
                }
                self.create(Kind::Tenant, "/v1/tenants", &body)
            }
            TenantCmd::Update {
                id,
                name,
                quotas,
                calls,
                clear,
            } => {
                let path = format!("/v1/tenants/{}", seg(&id));
                self.update(Kind::Tenant, &path, |t| {
                    set(t, "name", name);
                    let settings = t
                        .entry("calls")
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Some(c) = settings.as_object_mut() {
                        call_settings(c, calls);
                        clear_call_settings(c, clear);
                    }
                    let QuotaArgs {
                        max_calls,
                        max_call_rate,
                        max_registrations,
                    } = quotas;
                    if let Some(q) = t.get_mut("quotas").and_then(Value::as_object_mut) {
                        set(q, "max_concurrent_calls", max_calls);
                        set(q, "max_call_attempts_per_sec", max_call_rate);
                        set(q, "max_registrations", max_registrations);
                    }
                    Ok(())
                })
            }
            TenantCmd::Delete { id } => self.delete(
                &format!("/v1/tenants/{}", seg(&id)),
                &format!("tenant {id}"),
            ),
        }
    }

    fn number(&mut self, cmd: NumberCmd) -> Result<(), CtlError> {
        let base = self.scoped("numbers")?;
        match cmd {
            NumberCmd::List => self.list(Kind::Number, &base),
            NumberCmd::Get { digits } => {
                self.list(Kind::Number, &format!("{base}/{}", seg(&digits)))
            }
            NumberCmd::Create {
                digits,
                dest,
                tariff_band,
                recording: policy,
            } => {
                let mut body = json!({"digits": digits, "destination": dest});
                if let Some(band) = tariff_band {
                    body["tariff_band"] = json!(band);
                }
                if let Some(policy) = policy {
                    body["recording"] = json!(recording(policy));
                }
                self.create(Kind::Number, &base, &body)
            }
            NumberCmd::Update {
                digits,
                dest,
                tariff_band,
                recording: policy,
                tenant_recording,
            } => self.update(Kind::Number, &format!("{base}/{}", seg(&digits)), |n| {
                set(n, "destination", dest);
                set(n, "tariff_band", tariff_band);
                if tenant_recording {
                    n.remove("recording");
                }
                set(n, "recording", policy.map(recording));
                Ok(())
            }),
            NumberCmd::Delete { digits } => self.delete(
                &format!("{base}/{}", seg(&digits)),
                &format!("number {digits}"),
            ),
        }
    }

    fn extension(&mut self, cmd: ExtensionCmd) -> Result<(), CtlError> {
        let base = self.scoped("extensions")?;
        match cmd {
            ExtensionCmd::List => self.list(Kind::Extension, &base),
            ExtensionCmd::Get { ext } => {
                self.list(Kind::Extension, &format!("{base}/{}", seg(&ext)))
            }
            ExtensionCmd::Create {
                ext,
                name,
                credentials,
                forward,
            } => {
                let mut body = Map::new();
                body.insert("ext".into(), json!(ext));
                body.insert("display_name".into(), json!(name));
                credentials_into(&mut body, credentials)?;
                set(&mut body, "forward_to_mobile", forwarding(forward));
                self.create(Kind::Extension, &base, &Value::Object(body))
            }
            ExtensionCmd::Update {
                ext,
                name,
                credentials,
                forward,
                no_forward,
            } => self.update(Kind::Extension, &format!("{base}/{}", seg(&ext)), |e| {
                set(e, "display_name", name);
                credentials_into(e, credentials)?;
                if no_forward {
                    e.remove("forward_to_mobile");
                }
                set(e, "forward_to_mobile", forwarding(forward));
                Ok(())
            }),
            ExtensionCmd::Delete { ext } => self.delete(
                &format!("{base}/{}", seg(&ext)),
                &format!("extension {ext}"),
            ),
        }
    }

    fn hunt_group(&mut self, cmd: HuntGroupCmd) -> Result<(), CtlError> {
        let base = self.scoped("hunt-groups")?;
        match cmd {
            HuntGroupCmd::List => self.list(Kind::HuntGroup, &base),
            HuntGroupCmd::Get { id } => self.list(Kind::HuntGroup, &format!("{base}/{}", seg(&id))),
            HuntGroupCmd::Create {
                id,
                members,
                strategy,
                ring_secs,
                no_answer,
            } => {
                let body = json!({
                    "id": id,
                    "members": members,
                    "strategy": ring_strategy(strategy),
                    "ring_secs": ring_secs,
                    "no_answer": no_answer,
                });
                self.create(Kind::HuntGroup, &base, &body)
            }
            HuntGroupCmd::Update {
                id,
                members,
                strategy,
                ring_secs,
                no_answer,
            } => self.update(Kind::HuntGroup, &format!("{base}/{}", seg(&id)), |h| {
                set(h, "members", members);
                set(h, "strategy", strategy.map(ring_strategy));
                set(h, "ring_secs", ring_secs);
                set(h, "no_answer", no_answer);
                Ok(())
            }),
            HuntGroupCmd::Delete { id } => {
                self.delete(&format!("{base}/{}", seg(&id)), &format!("hunt group {id}"))
            }
        }
    }

    fn queue(&mut self, cmd: QueueCmd) -> Result<(), CtlError> {
        let base = self.scoped("queues")?;
        match cmd {
            QueueCmd::List => self.list(Kind::Queue, &base),
            QueueCmd::Get { id } => self.list(Kind::Queue, &format!("{base}/{}", seg(&id))),
            QueueCmd::Create {
                id,
                name,
                strategy,
                max_wait_secs,
                max_len,
                settings,
            } => {
                let mut body = Map::new();
                body.insert("id".into(), json!(id));
                body.insert("name".into(), json!(name));
                body.insert("strategy".into(), json!(queue_strategy(strategy)));
                body.insert("max_wait_secs".into(), json!(max_wait_secs));
                body.insert("max_len".into(), json!(max_len));
                queue_settings(&mut body, settings);
                self.create(Kind::Queue, &base, &Value::Object(body))
            }
            QueueCmd::Update {
                id,
                name,
                strategy,
                max_wait_secs,
                max_len,
                settings,
            } => self.update(Kind::Queue, &format!("{base}/{}", seg(&id)), |q| {
                set(q, "name", name);
                set(q, "strategy", strategy.map(queue_strategy));
                set(q, "max_wait_secs", max_wait_secs);
                set(q, "max_len", max_len);
                queue_settings(q, settings);
                Ok(())
            }),
            QueueCmd::Delete { id } => {
                self.delete(&format!("{base}/{}", seg(&id)), &format!("queue {id}"))
            }
        }
    }

    fn agent(&mut self, cmd: AgentCmd) -> Result<(), CtlError> {
        let base = self.scoped("agents")?;
        match cmd {
            AgentCmd::List => self.list(Kind::Agent, &base),
            AgentCmd::Get { extension } => {
                self.list(Kind::Agent, &format!("{base}/{}", seg(&extension)))
            }
            AgentCmd::Create {
                extension,
                state,
                pause_reason,
                skills,
            } => {
                let mut body = json!({
                    "extension": extension,
                    "state": agent_state(state),
                    "skills": skill_map(skills),
                });
                if let Some(reason) = pause_reason {
                    body["pause_reason"] = json!(reason);
                }
                self.create(Kind::Agent, &base, &body)
            }
            AgentCmd::Update {
                extension,
                state,
                pause_reason,
                skills,
                no_skills,
            } => self.update(Kind::Agent, &format!("{base}/{}", seg(&extension)), |a| {
                if let Some(state) = state {
                    a.insert("state".into(), json!(agent_state(state)));
                    if !matches!(state, AgentState::Paused) {
                        a.remove("pause_reason");
                    }
                }
                set(a, "pause_reason", pause_reason);
                if no_skills || !skills.is_empty() {
                    a.insert("skills".into(), skill_map(skills));
                }
                Ok(())
            }),
            AgentCmd::Delete { extension } => self.delete(
                &format!("{base}/{}", seg(&extension)),
                &format!("agent {extension}"),
            ),
        }
    }

    fn token(&mut self, cmd: TokenCmd) -> Result<(), CtlError> {
        let base = self.scoped("tokens")?;
        match cmd {
            TokenCmd::Create { id } => {
                self.create(Kind::CreatedToken, &base, &json!({"id": id}))?;
                eprintln!("Store the token now: it is not shown again.");
                Ok(())
            }
            TokenCmd::List => self.list(Kind::Token, &base),
            TokenCmd::Revoke { id } => {
                self.delete(&format!("{base}/{}", seg(&id)), &format!("token {id}"))
            }
        }
    }

    fn cluster(&mut self, cmd: ClusterCmd) -> Result<(), CtlError> {
        let v = match cmd {
            ClusterCmd::Status => self.call(Method::GET, "/v1/cluster", None)?,
            ClusterCmd::AddLearner {
                id,
                raft_addr,
                api_addr,
            } => {
                let body = json!({"id": id, "raft_addr": raft_addr, "api_addr": api_addr});
                self.call(Method::POST, "/v1/cluster/learners", Some(&body))?
            }
            ClusterCmd::Promote { id } => {
                self.call(Method::POST, &format!("/v1/cluster/voters/{id}"), None)?
            }
            ClusterCmd::Remove { id } => {
                self.call(Method::DELETE, &format!("/v1/cluster/members/{id}"), None)?
            }
        };
        if self.json {
            writeln!(self.out, "{}", pretty(&v))?;
        } else {
            table::cluster_status(&v, self.out)?;
        }
        Ok(())
    }
}

pub(super) fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// Sets `key` when a value was given.
pub(super) fn set<T: Into<Value>>(map: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(v) = value {
        map.insert(key.into(), v.into());
    }
}

/// Puts the credentials given into an extension body, replacing any there.
fn credentials_into(body: &mut Map<String, Value>, c: CredentialArgs) -> Result<(), CtlError> {
    let password = if c.password_stdin {
        Some(password_from_stdin()?)
    } else {
        c.password
    };
    set(body, "password", password);
    set(body, "ha1_md5", c.ha1_md5);
    set(body, "ha1_sha256", c.ha1_sha256);
    Ok(())
}

/// The first line of standard input, without its line end.
pub(super) fn password_from_stdin() -> Result<String, CtlError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CtlError::Usage(format!("cannot read the password from stdin: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn forwarding(f: ForwardArgs) -> Option<Value> {
    let number = f.forward?;
    let when: Vec<&str> = f
        .forward_when
        .iter()
        .map(|w| match w {
            ForwardWhen::Unregistered => "unregistered",
            ForwardWhen::NoAnswer => "no_answer",
            ForwardWhen::Busy => "busy",
            ForwardWhen::Always => "always",
        })
        .collect();
    Some(json!({"number": number, "when": when}))
}

fn skill_map(skills: Vec<(String, u8)>) -> Value {
    Value::Object(skills.into_iter().map(|(k, l)| (k, json!(l))).collect())
}

fn ring_strategy(s: RingStrategy) -> &'static str {
    match s {
        RingStrategy::RingAll => "ring_all",
        RingStrategy::Sequential => "sequential",
    }
}

fn queue_strategy(s: QueueStrategy) -> &'static str {
    match s {
        QueueStrategy::RingAll => "ring_all",
        QueueStrategy::LongestIdle => "longest_idle",
        QueueStrategy::LeastCalls => "least_calls",
        QueueStrategy::RoundRobin => "round_robin",
        QueueStrategy::TopDown => "top_down",
        QueueStrategy::Random => "random",
        QueueStrategy::SkillsBased => "skills_based",
    }
}

/// Puts the queue settings given into a queue body.
fn queue_settings(q: &mut Map<String, Value>, a: QueueArgs) {
    if a.no_members || !a.members.is_empty() {
        q.insert("members".into(), Value::Array(a.members));
    }
    set(q, "ring_secs", a.ring_secs);
    set(q, "wrap_up_secs", a.wrap_up_secs);
    set(q, "join_empty", a.join_empty);
    set(q, "tier_widen_secs", a.tier_widen_secs);
    set(q, "auto_pause_no_answer", a.auto_pause_no_answer);
    set(q, "service_level_secs", a.service_level_secs);
    set(q, "skill", a.skill);
    if let Some(destination) = a.overflow {
        q.insert(
            "overflow".into(),
            json!({
                "destination": destination,
                "at_len": a.overflow_at_len,
                "after_wait_secs": a.overflow_after_secs,
            }),
        );
    } else if a.no_overflow {
        q.remove("overflow");
    }
    if a.no_vip || !a.vip_callers.is_empty() {
        let vips = a.vip_callers.into_iter().map(|(n, p)| (n, json!(p)));
        q.insert("vip_callers".into(), Value::Object(vips.collect()));
    }
    set(q, "callback_digit", a.callback_digit.map(String::from));
    if a.no_callback {
        q.remove("callback_digit");
    }
    set(q, "announce", a.announce);
    set(q, "announce_every_secs", a.announce_every_secs);
    set(q, "announce_language", a.announce_language);
}

fn agent_state(s: AgentState) -> &'static str {
    match s {
        AgentState::LoggedOut => "logged_out",
        AgentState::Available => "available",
        AgentState::Paused => "paused",
    }
}
