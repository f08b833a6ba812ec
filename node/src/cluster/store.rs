//! The registrar's location service and user directory, backed by the control plane:
//! credentials and bindings are read from the watch-fed [`Cache`], and a REGISTER is
//! answered only after its binding change is committed by the Raft group.

use std::time::Duration;

use tongdai_control_plane::model::{self, Command, CommandError, ContactUpdate, Id, Outcome};

use super::ControlPlaneClient;
use crate::registrar::{
    Binding, BindingError, LocationError, LocationService, RegisterOp, RegisterRequest,
    UserDirectory,
};
use crate::sip::auth::HashFunction;

/// The control-plane-backed store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ClusterStore {
    client: ControlPlaneClient,
}

impl ClusterStore {
    pub fn new(client: ControlPlaneClient) -> ClusterStore {
        ClusterStore { client }
    }

    pub fn client(&self) -> &ControlPlaneClient {
        &self.client
    }
}

/// `user@tenant` → (tenant, extension).
pub(crate) fn split_aor(aor: &str) -> Option<(Id, Id)> {
    let (user, domain) = aor.rsplit_once('@')?;
    Some((Id::new(domain).ok()?, Id::new(user).ok()?))
}

fn transport(name: &str) -> model::Transport {
    match name.to_ascii_uppercase().as_str() {
        "TCP" => model::Transport::Tcp,
        "TLS" => model::Transport::Tls,
        _ => model::Transport::Udp,
    }
}

pub(crate) fn from_model(b: model::Binding) -> Binding {
    Binding {
        contact: b.contact,
        expires_at_ms: b.expires_at_ms,
        q: b.q,
        call_id: b.call_id,
        cseq: b.cseq,
        source: b.source,
        transport: match b.transport {
            model::Transport::Udp => "UDP",
            model::Transport::Tcp => "TCP",
            model::Transport::Tls => "TLS",
        }
        .to_owned(),
        params: b.params,
    }
}

/// What a REGISTER asks of the store.
pub(crate) enum Change {
    /// No Contact: list the AOR's bindings, change nothing.
    Query { aor: String },
    /// A command to commit for the AOR's tenant and extension.
    Commit {
        tenant: Id,
        ext: Id,
        /// Boxed: a command is large, a query small.
        command: Box<Command>,
    },
}

/// Turns a REGISTER into the model command it needs (or a query).
pub(crate) fn change_for(req: RegisterRequest) -> Result<Change, LocationError> {
    let (tenant, ext) = split_aor(&req.aor).ok_or_else(|| {
        LocationError::Refused("Address-of-record is not a valid extension".into())
    })?;
    let command = match req.op {
        RegisterOp::Fetch => return Ok(Change::Query { aor: req.aor }),
        RegisterOp::RemoveAll => Command::Unregister {
            tenant: tenant.clone(),
            extension: ext.clone(),
            call_id: req.call_id,
            cseq: req.cseq,
        },
        RegisterOp::Update(contacts) => Command::Register(model::RegisterRequest {
            tenant: tenant.clone(),
            extension: ext.clone(),
            call_id: req.call_id,
            cseq: req.cseq,
            source: req.source,
            transport: transport(&req.transport),
            contacts: contacts
                .into_iter()
                .map(|c| ContactUpdate {
                    contact: c.contact,
                    expires_secs: c.expires_secs,
                    q: c.q,
                    params: c.params,
                })
                .collect(),
        }),
    };
    Ok(Change::Commit {
        tenant,
        ext,
        command: Box::new(command),
    })
}

/// Live bindings at `now_ms`, highest q first, as the registrar lists them.
pub(crate) fn live_bindings(list: Vec<model::Binding>, now_ms: u64) -> Vec<Binding> {
    let mut live: Vec<Binding> = list
        .into_iter()
        .filter(|b| b.is_live(now_ms))
        .map(from_model)
        .collect();
    live.sort_by_key(|b| std::cmp::Reverse(b.q));
    live
}

/// The registrar's answer for a command's result.
pub(crate) fn answer(
    result: Result<Outcome, CommandError>,
    now_ms: u64,
) -> Result<Vec<Binding>, LocationError> {
    match result {
        Ok(Outcome::Bindings(bindings)) => Ok(live_bindings(bindings, now_ms)),
        Ok(other) => Err(LocationError::Unavailable(format!(
            "unexpected outcome {other:?}"
        ))),
        Err(e) => Err(refused(e)),
    }
}

pub(crate) fn refused(e: CommandError) -> LocationError {
    match e {
        CommandError::StaleCseq { .. } => LocationError::Binding(BindingError::StaleCseq),
        CommandError::TooManyContacts { limit, .. } => {
            LocationError::Binding(BindingError::TooManyContacts(limit))
        }
        CommandError::RegistrationQuotaExceeded { .. } => {
            LocationError::Refused("Registration quota of the tenant exceeded".into())
        }
        CommandError::UnknownExtension { .. } | CommandError::UnknownTenant(_) => {
            LocationError::Refused("Unknown extension".into())
        }
        other => LocationError::Refused(crate::sip::parse::sanitize_reason(&other.to_string())),
    }
}

impl ClusterStore {
    /// The bindings once the watch stream delivered the one with this Call-ID and at
    /// least this CSeq (bounded wait), else what the cache has.
    async fn committed_bindings(
        &self,
        tenant: &Id,
        ext: &Id,
        call_id: &str,
        cseq: u32,
        now_ms: u64,
    ) -> Vec<Binding> {
        let cache = self.client.cache();
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        loop {
            let list = cache.bindings(tenant, ext, 0);
            let seen = list.iter().any(|b| b.call_id == call_id && b.cseq >= cseq);
            if seen || std::time::Instant::now() >= deadline {
                return live_bindings(list, now_ms);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl LocationService for ClusterStore {
    async fn register(
        &self,
        req: RegisterRequest,
        now_ms: u64,
    ) -> Result<Vec<Binding>, LocationError> {
        let (call_id, cseq) = (req.call_id.clone(), req.cseq);
        let (tenant, ext, command) = match change_for(req)? {
            Change::Query { aor } => return Ok(self.lookup(&aor, now_ms)),
            Change::Commit {
                tenant,
                ext,
                command,
            } => (tenant, ext, command),
        };
        let started = std::time::Instant::now();
        let (result, maybe_applied_before) = self
            .client
            .propose_one(*command)
            .await
            .map_err(|e| LocationError::Unavailable(e.to_string()))?;
        metrics::histogram!("tongdai_registration_commit_seconds")
            .record(started.elapsed().as_secs_f64());
        match result {
            // An attempt that timed out was committed after all; the retry found its
            // own binding (or a newer one from the same phone).
            Err(CommandError::StaleCseq { .. }) if maybe_applied_before => Ok(self
                .committed_bindings(&tenant, &ext, &call_id, cseq, now_ms)
                .await),
            Ok(Outcome::Bindings(bindings)) => {
                self.client
                    .cache()
                    .put_bindings(&tenant, &ext, bindings.clone());
                Ok(live_bindings(bindings, now_ms))
            }
            other => answer(other, now_ms),
        }
    }

    fn lookup(&self, aor: &str, now_ms: u64) -> Vec<Binding> {
        let Some((tenant, ext)) = split_aor(aor) else {
            return Vec::new();
        };
        self.client
            .cache()
            .bindings(&tenant, &ext, now_ms)
            .into_iter()
            .map(from_model)
            .collect()
    }

    /// The leader sweeps expired bindings; nodes only ignore them.
    fn sweep(&self, _now_ms: u64) -> usize {
        0
    }

    fn binding_count(&self) -> usize {
        self.client.cache().binding_count()
    }
}

impl UserDirectory for ClusterStore {
    fn has_realm(&self, realm: &str) -> bool {
        self.client.cache().has_tenant(realm)
    }

    fn ha1(&self, realm: &str, username: &str, hash: HashFunction) -> Option<String> {
        let tenant = Id::new(realm).ok()?;
        let ext = Id::new(username).ok()?;
        self.client
            .cache()
            .with_extension(&tenant, &ext, |e| match hash {
                HashFunction::Md5 => Some(e.ha1_md5.clone()),
                HashFunction::Sha256 => Some(e.ha1_sha256.clone()),
                HashFunction::Sha512_256 => None,
            })
            .flatten()
    }
}
