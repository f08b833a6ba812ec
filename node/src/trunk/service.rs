//! The task that runs the trunks' [`Registration`]s: it follows the trunks in the
//! control-plane cache, resolves their addresses, sends the machines' REGISTERs through
//! the SIP core, feeds them responses, failures and time, and publishes their states
//! ([`StatusBoard`]) and the carriers' addresses for recognising their calls.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, watch};
use tongdai_control_plane::model::{Id, Transport, Trunk};

use super::TrunkKey;
use super::registration::{Failure, Params, Registration, State};
use super::status::{Entry, StatusBoard};
use crate::cluster::Cache;
use crate::server::SipCore;
use crate::sip::Response;
use crate::sip::transaction::{Peer, TransactionKey};
use crate::sip::transport::TransportKind;

/// How often the task looks for changed trunks in the cache (it compares revisions).
const POLL: Duration = Duration::from_secs(1);
/// How long a host name may take to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);
/// When a trunk's address does not resolve, how long until it is tried again.
const RESOLVE_RETRY: Duration = Duration::from_secs(30);

enum Input {
    Response(TransactionKey, Response),
    Failed(TransactionKey, Failure),
    Stop,
}

/// A trunk whose calls are recognised by their source: registering, without trusted
/// sources, its address resolved to this `IP:port`.
#[derive(Debug, Clone)]
struct Carrier {
    key: TrunkKey,
    username: String,
}

/// The node's trunk registrations: a handle shared by the SIP core (which hands it the
/// responses to its REGISTERs), the B2BUA (which asks whose calls come from a carrier)
/// and the task doing the work ([`Self::start`]).
#[derive(Debug)]
pub struct TrunkRegistrations {
    tx: mpsc::UnboundedSender<Input>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<Input>>>,
    /// Client transactions of our REGISTERs, to their machine.
    transactions: Mutex<HashMap<TransactionKey, u64>>,
    carriers: RwLock<HashMap<SocketAddr, Vec<Carrier>>>,
    board: StatusBoard,
    /// True once [`Self::stop_all`] has finished every registration.
    stopped: watch::Sender<bool>,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Response(k, r) => write!(f, "Response({k}, {})", r.status),
            Input::Failed(k, e) => write!(f, "Failed({k}, {e})"),
            Input::Stop => f.write_str("Stop"),
        }
    }
}

impl TrunkRegistrations {
    pub fn new(board: StatusBoard) -> Arc<TrunkRegistrations> {
        let (tx, rx) = mpsc::unbounded_channel();
        Arc::new(TrunkRegistrations {
            tx,
            rx: Mutex::new(Some(rx)),
            transactions: Mutex::new(HashMap::new()),
            carriers: RwLock::new(HashMap::new()),
            board,
            stopped: watch::channel(false).0,
        })
    }

    /// Starts the task: it registers every trunk of `cache` that has a registration
    /// (and is not disabled) from `local` (this node's advertised SIP address), sending
    /// through `core`. Once only.
    pub fn start(self: &Arc<Self>, core: &Arc<SipCore>, cache: Arc<Cache>, local: SocketAddr) {
        let Some(rx) = self.rx.lock().take() else {
            return;
        };
        metrics::describe_gauge!(
            super::status::TRUNK_REGISTERED,
            "1 while the carrier holds this node's registration for the trunk, else 0"
        );
        let shell = Shell {
            regs: self.clone(),
            core: Arc::downgrade(core),
            cache,
            local,
            desired: HashMap::new(),
            machines: HashMap::new(),
            next_id: 0,
            stopping: false,
            seen_revision: None,
        };
        tokio::spawn(shell.run(rx));
    }

    /// Whether `key` is one of our REGISTERs' transactions.
    pub fn owns(&self, key: &TransactionKey) -> bool {
        self.transactions.lock().contains_key(key)
    }

    /// A response to one of our REGISTERs; false when `key` is not ours.
    pub fn on_response(&self, key: &TransactionKey, response: Response) -> bool {
        if !self.owns(key) {
            return false;
        }
        let _ = self.tx.send(Input::Response(key.clone(), response));
        true
    }

    /// One of our REGISTERs timed out (`timeout`) or could not be sent; false when `key`
    /// is not ours.
    pub fn on_failed(&self, key: &TransactionKey, timeout: bool) -> bool {
        if !self.owns(key) {
            return false;
        }
        let failure = if timeout {
            Failure::Timeout
        } else {
            Failure::Transport
        };
        let _ = self.tx.send(Input::Failed(key.clone(), failure));
        true
    }

    /// Removes every binding (REGISTER with `Expires: 0`) and registers nothing more:
    /// the node is draining or shutting down. [`Self::stopped`] resolves when done.
    pub fn stop_all(&self) {
        if self.tx.send(Input::Stop).is_err() {
            // The task never ran: nothing is registered.
            self.stopped.send_replace(true);
        }
    }

    /// Resolves once [`Self::stop_all`] has removed every binding (or given up on it).
    pub async fn stopped(&self) {
        let mut rx = self.stopped.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    pub fn board(&self) -> &StatusBoard {
        &self.board
    }

    /// The registering trunk whose carrier sent from `source`: among trunks with a
    /// registration and no trusted sources, the one whose address resolved to exactly
    /// `source` (`IP:port`); when several share it (tenants with accounts at the same
    /// carrier), the one whose registration username is `request_user` (we register
    /// `sip:username@node` as Contact). `None` otherwise.
    pub fn trunk_for_carrier(
        &self,
        source: SocketAddr,
        request_user: Option<&str>,
    ) -> Option<TrunkKey> {
        let carriers = self.carriers.read();
        let found = carriers.get(&SocketAddr::new(source.ip().to_canonical(), source.port()))?;
        match found.as_slice() {
            [only] => Some(only.key.clone()),
            several => several
                .iter()
                .find(|c| Some(c.username.as_str()) == request_user)
                .map(|c| c.key.clone()),
        }
    }
}

/// A trunk that should be registered, as last configured.
#[derive(Debug)]
struct Desired {
    trunk: Trunk,
    /// Its current machine, if it could be made.
    machine: Option<u64>,
    /// Why it has no machine: an address that does not resolve (tried again at the
    /// instant given), a transport we cannot register over.
    problem: Option<(String, Option<Instant>)>,
}

#[derive(Debug)]
struct Slot {
    key: TrunkKey,
    machine: Registration,
    /// Stopping because its trunk was removed or changed account/address.
    retiring: bool,
}

/// The task's state.
struct Shell {
    regs: Arc<TrunkRegistrations>,
    core: Weak<SipCore>,
    cache: Arc<Cache>,
    local: SocketAddr,
    desired: HashMap<TrunkKey, Desired>,
    machines: HashMap<u64, Slot>,
    next_id: u64,
    stopping: bool,
    seen_revision: Option<u64>,
}

impl Shell {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Input>) {
        loop {
            let now = Instant::now();
            let wake = self
                .next_timeout()
                .map_or(now + POLL, |t| t.min(now + POLL));
            tokio::select! {
                input = rx.recv() => match input {
                    Some(input) => self.handle(input),
                    None => return,
                },
                () = tokio::time::sleep_until(wake.into()) => {}
            }
            if !self.stopping {
                self.reconcile().await;
            }
            let now = Instant::now();
            for slot in self.machines.values_mut() {
                if slot.machine.poll_timeout().is_some_and(|t| t <= now) {
                    slot.machine.handle_timeout(now);
                }
            }
            if self.flush().await.is_err() {
                return;
            }
            self.publish();
            if self.stopping && self.machines.is_empty() {
                self.regs.stopped.send_replace(true);
                // Answers to nothing: drain the channel until the node drops it.
                while rx.recv().await.is_some() {}
                return;
            }
        }
    }

    fn next_timeout(&self) -> Option<Instant> {
        let machines = self
            .machines
            .values()
            .filter_map(|s| s.machine.poll_timeout());
        let problems = self.desired.values().filter_map(|d| d.problem.as_ref()?.1);
        machines.chain(problems).min()
    }

    fn handle(&mut self, input: Input) {
        let now = Instant::now();
        match input {
            Input::Response(key, response) => {
                let final_response = response.status >= 200;
                let id = self.regs.transactions.lock().get(&key).copied();
                if let Some(slot) = id.and_then(|id| self.machines.get_mut(&id)) {
                    slot.machine.handle_response(&response, now);
                }
                if final_response {
                    self.regs.transactions.lock().remove(&key);
                }
            }
            Input::Failed(key, failure) => {
                let id = self.regs.transactions.lock().remove(&key);
                if let Some(slot) = id.and_then(|id| self.machines.get_mut(&id)) {
                    slot.machine.handle_failure(failure, now);
                }
            }
            Input::Stop => {
                self.stopping = true;
                for slot in self.machines.values_mut() {
                    slot.machine.stop(now);
                }
                for key in self.desired.keys() {
                    self.regs.board.remove(key);
                }
                self.desired.clear();
                self.regs.carriers.write().clear();
            }
        }
    }

    /// Follows the cache: starts, updates and retires machines to match the trunks.
    async fn reconcile(&mut self) {
        let revision = self.cache.revision();
        let now = Instant::now();
        let retry_due = self.desired.values().any(|d| {
            d.problem
                .as_ref()
                .and_then(|p| p.1)
                .is_some_and(|t| t <= now)
        });
        if revision == self.seen_revision && !retry_due {
            return;
        }
        self.seen_revision = revision;
        let wanted: HashMap<TrunkKey, Trunk> = self
            .cache
            .all_trunks()
            .into_iter()
            .filter(|t| t.registration.is_some() && t.max_concurrent_calls > 0)
            .map(|t| ((t.tenant.clone(), t.id.clone()), t))
            .collect();
        let gone: Vec<TrunkKey> = self
            .desired
            .keys()
            .filter(|k| !wanted.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(d) = self.desired.remove(&key) {
                tracing::info!(tenant = %key.0, trunk = %key.1, "trunk registration removed");
                self.retire(d.machine, now);
            }
            self.regs.board.remove(&key);
        }
        for (key, trunk) in wanted {
            let unchanged = self.desired.get(&key).is_some_and(|d| {
                d.trunk == trunk && d.problem.as_ref().and_then(|p| p.1).is_none_or(|t| t > now)
            });
            if unchanged {
                continue;
            }
            let params = self.params_for(&trunk).await;
            let old = self.desired.remove(&key);
            let mut desired = Desired {
                trunk,
                machine: None,
                problem: None,
            };
            let old_machine = old.and_then(|d| d.machine);
            match params {
                Err(problem) => {
                    self.retire(old_machine, now);
                    desired.problem = Some(problem);
                }
                Ok(params) => {
                    let updated = old_machine.filter(|id| {
                        self.machines
                            .get_mut(id)
                            .is_some_and(|s| s.machine.update(params.clone(), now))
                    });
                    if updated.is_some() {
                        desired.machine = updated;
                    } else {
                        self.retire(old_machine, now);
                        match Registration::new(params) {
                            Ok(mut machine) => {
                                machine.start(now);
                                let id = self.next_id;
                                self.next_id += 1;
                                self.machines.insert(
                                    id,
                                    Slot {
                                        key: key.clone(),
                                        machine,
                                        retiring: false,
                                    },
                                );
                                desired.machine = Some(id);
                            }
                            Err(e) => desired.problem = Some((e.to_string(), None)),
                        }
                    }
                }
            }
            self.desired.insert(key, desired);
        }
        self.index_carriers();
    }

    /// Stops a machine whose trunk no longer wants it; it is dropped once stopped.
    fn retire(&mut self, id: Option<u64>, now: Instant) {
        if let Some(slot) = id.and_then(|id| self.machines.get_mut(&id)) {
            slot.retiring = true;
            slot.machine.stop(now);
        }
    }

    /// The registration parameters of `trunk`, or why it cannot register (and when to
    /// try again, for an address that did not resolve).
    async fn params_for(&self, trunk: &Trunk) -> Result<Params, (String, Option<Instant>)> {
        let reg = trunk
            .registration
            .as_ref()
            .ok_or_else(|| ("no registration".to_owned(), None))?;
        if trunk.transport != Transport::Udp {
            return Err((
                "registration over TCP or TLS is not supported yet: use a UDP trunk".into(),
                None,
            ));
        }
        let addr = match trunk.address.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                let lookup = tokio::net::lookup_host(trunk.address.as_str());
                let retry = Some(Instant::now() + RESOLVE_RETRY);
                match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
                    Ok(Ok(mut addrs)) => addrs.next().ok_or_else(|| {
                        (format!("{} resolves to no address", trunk.address), retry)
                    })?,
                    Ok(Err(e)) => {
                        return Err((format!("cannot resolve {}: {e}", trunk.address), retry));
                    }
                    Err(_) => {
                        return Err((format!("resolving {} timed out", trunk.address), retry));
                    }
                }
            }
        };
        Ok(Params {
            username: reg.username.clone(),
            password: reg.password.clone(),
            domain: reg.domain.clone(),
            expires_secs: reg.expires_secs,
            registrar: Peer {
                addr,
                transport: TransportKind::Udp,
            },
            local: self.local,
        })
    }

    /// Rebuilds the carriers' addresses whose calls count as their trunk's.
    fn index_carriers(&self) {
        let mut index: HashMap<SocketAddr, Vec<Carrier>> = HashMap::new();
        for (key, d) in &self.desired {
            if !d.trunk.trusted_sources.is_empty() {
                continue;
            }
            let Some(slot) = d.machine.and_then(|id| self.machines.get(&id)) else {
                continue;
            };
            let params = slot.machine.params();
            index
                .entry(SocketAddr::new(
                    params.registrar.addr.ip().to_canonical(),
                    params.registrar.addr.port(),
                ))
                .or_default()
                .push(Carrier {
                    key: key.clone(),
                    username: params.username.clone(),
                });
        }
        *self.regs.carriers.write() = index;
    }

    /// Sends every REGISTER the machines queued. Err when the SIP core is gone.
    async fn flush(&mut self) -> Result<(), ()> {
        let core = self.core.upgrade().ok_or(())?;
        let now = Instant::now();
        for (id, slot) in &mut self.machines {
            while let Some((request, peer)) = slot.machine.poll_request() {
                // Registered before sending: a send failure is reported while sending.
                let key = match TransactionKey::for_outgoing_request(&request) {
                    Ok(k) => k,
                    Err(e) => {
                        tracing::warn!("REGISTER without a usable Via: {e}");
                        slot.machine.handle_failure(Failure::Transport, now);
                        continue;
                    }
                };
                self.regs.transactions.lock().insert(key.clone(), *id);
                if let Err(e) = core.request(request, peer).await {
                    tracing::debug!(tenant = %slot.key.0, trunk = %slot.key.1, "REGISTER not sent: {e}");
                    self.regs.transactions.lock().remove(&key);
                    slot.machine.handle_failure(Failure::Transport, now);
                }
            }
        }
        Ok(())
    }

    /// Publishes every trunk's state (logging changes) and drops stopped machines.
    fn publish(&mut self) {
        for (key, d) in &self.desired {
            let entry = match d.machine.and_then(|id| self.machines.get(&id)) {
                Some(slot) => entry_for(&d.trunk, &slot.machine),
                None => Entry {
                    state: "failed",
                    address: d.trunk.address.clone(),
                    registrar: None,
                    aor: aor_of(&d.trunk),
                    contact: None,
                    until: None,
                    retry_at: d.problem.as_ref().and_then(|p| p.1),
                    reason: d.problem.as_ref().map(|p| p.0.clone()),
                },
            };
            log_change(key, &entry, &self.regs.board);
        }
        let stopped: Vec<u64> = self
            .machines
            .iter()
            .filter(|(_, s)| s.machine.is_stopped() && (s.retiring || self.stopping))
            .map(|(id, _)| *id)
            .collect();
        for id in stopped {
            if let Some(slot) = self.machines.remove(&id) {
                tracing::info!(
                    tenant = %slot.key.0,
                    trunk = %slot.key.1,
                    call_id = %slot.machine.call_id(),
                    "trunk registration stopped"
                );
            }
            self.regs.transactions.lock().retain(|_, m| *m != id);
        }
    }
}

fn aor_of(trunk: &Trunk) -> String {
    trunk
        .registration
        .as_ref()
        .map(|r| format!("sip:{}@{}", r.username, r.domain))
        .unwrap_or_default()
}

fn entry_for(trunk: &Trunk, machine: &Registration) -> Entry {
    let params = machine.params();
    let (until, retry_at, reason) = match machine.state() {
        State::Registered { until, .. } => (Some(*until), None, None),
        State::Failed { failure, retry_at } => (None, Some(*retry_at), Some(failure.to_string())),
        _ => (None, None, None),
    };
    Entry {
        state: machine.state().name(),
        address: trunk.address.clone(),
        registrar: Some(params.registrar.addr),
        aor: params.aor(),
        contact: Some(params.contact_uri()),
        until,
        retry_at,
        reason,
    }
}

fn log_change(key: &TrunkKey, entry: &Entry, board: &StatusBoard) {
    let (tenant, trunk): (&Id, &Id) = (&key.0, &key.1);
    let shown = entry.clone();
    if !board.set(key, shown) {
        return;
    }
    let registrar = entry
        .registrar
        .map_or_else(|| entry.address.clone(), |a| a.to_string());
    match (&entry.reason, entry.retry_at) {
        (Some(reason), retry_at) => tracing::warn!(
            %tenant,
            %trunk,
            state = entry.state,
            %registrar,
            retry_in_secs = retry_at.map(|t| t.saturating_duration_since(Instant::now()).as_secs()),
            "trunk registration failed: {reason}"
        ),
        (None, _) => tracing::info!(
            %tenant,
            %trunk,
            state = entry.state,
            %registrar,
            expires_in_secs = entry
                .until
                .map(|t| t.saturating_duration_since(Instant::now()).as_secs()),
            "trunk registration {}",
            entry.state
        ),
    }
}
