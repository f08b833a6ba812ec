//! Which trunk trusts a packet's source: an index of every trunk's trusted sources, so
//! the lookup an INVITE needs is a few hash probes instead of a scan of all trunks.
//!
//! Precedence: an exact `IP:port` beats a bare IP, which beats the narrowest network
//! holding the address. The control plane keeps each source on one trunk only, so at
//! each level at most one trunk matches.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

use tongdai_control_plane::model::{Id, Trunk, TrustedSource, network_of};

/// (tenant, trunk id).
pub(super) type TrunkKey = (Id, Id);

/// Networks of one address family: by prefix length, then by network address.
type Nets = BTreeMap<u8, HashMap<IpAddr, TrunkKey>>;

#[derive(Debug, Default)]
pub(super) struct SourceIndex {
    exact: HashMap<SocketAddr, TrunkKey>,
    ips: HashMap<IpAddr, TrunkKey>,
    nets_v4: Nets,
    nets_v6: Nets,
}

impl SourceIndex {
    /// Indexes `trunk`'s sources under `key`, replacing whatever held them.
    pub fn insert(&mut self, key: &TrunkKey, trunk: &Trunk) {
        for source in trunk.sources() {
            match source {
                TrustedSource::Addr(a) => {
                    self.exact.insert(a, key.clone());
                }
                TrustedSource::Ip(ip) => {
                    self.ips.insert(ip, key.clone());
                }
                TrustedSource::Net { network, prefix } => {
                    self.nets_mut(network)
                        .entry(prefix)
                        .or_default()
                        .insert(network, key.clone());
                }
            }
        }
    }

    /// Drops `trunk`'s sources, those still pointing at `key` only: within one watch
    /// delta a source may already have moved to another trunk.
    pub fn remove(&mut self, key: &TrunkKey, trunk: &Trunk) {
        for source in trunk.sources() {
            match source {
                TrustedSource::Addr(a) => remove_if(&mut self.exact, &a, key),
                TrustedSource::Ip(ip) => remove_if(&mut self.ips, &ip, key),
                TrustedSource::Net { network, prefix } => {
                    let nets = self.nets_mut(network);
                    if let Some(by_net) = nets.get_mut(&prefix) {
                        remove_if(by_net, &network, key);
                        if by_net.is_empty() {
                            nets.remove(&prefix);
                        }
                    }
                }
            }
        }
    }

    /// The trunk trusting `source`, by precedence.
    pub fn lookup(&self, source: SocketAddr) -> Option<&TrunkKey> {
        // A dual-stack socket reports IPv4 peers as IPv4-mapped IPv6; sources are
        // stored as IPv4.
        let ip = source.ip().to_canonical();
        if let Some(k) = self.exact.get(&SocketAddr::new(ip, source.port())) {
            return Some(k);
        }
        if let Some(k) = self.ips.get(&ip) {
            return Some(k);
        }
        let nets = match ip {
            IpAddr::V4(_) => &self.nets_v4,
            IpAddr::V6(_) => &self.nets_v6,
        };
        nets.iter()
            .rev()
            .find_map(|(prefix, by_net)| by_net.get(&network_of(ip, *prefix)))
    }

    fn nets_mut(&mut self, network: IpAddr) -> &mut Nets {
        match network {
            IpAddr::V4(_) => &mut self.nets_v4,
            IpAddr::V6(_) => &mut self.nets_v6,
        }
    }
}

fn remove_if<K: std::hash::Hash + Eq>(map: &mut HashMap<K, TrunkKey>, k: &K, owner: &TrunkKey) {
    if map.get(k) == Some(owner) {
        map.remove(k);
    }
}
