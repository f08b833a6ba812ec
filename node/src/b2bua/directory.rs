//! The number plan's view of the control plane: the node's watch-fed cache, plus which
//! extensions are on a call through this node.

use tongdai_control_plane::model::{Binding, Extension, HuntGroup, Id, Number, Tenant};

use super::B2bua;
use super::route::{Directory, TrunkRoute};
use crate::cluster::Cache;

#[derive(Debug)]
pub struct CacheDirectory<'a> {
    pub cache: &'a Cache,
    pub b2b: &'a B2bua,
}

impl Directory for CacheDirectory<'_> {
    fn tenant(&self, id: &Id) -> Option<Tenant> {
        self.cache.tenant(id)
    }

    fn number(&self, digits: &str) -> Option<Number> {
        self.cache.number(digits)
    }

    fn extension(&self, tenant: &Id, ext: &Id) -> Option<Extension> {
        self.cache.extension(tenant, ext)
    }

    fn hunt_group(&self, tenant: &Id, id: &Id) -> Option<HuntGroup> {
        self.cache.hunt_group(tenant, id)
    }

    fn bindings(&self, tenant: &Id, ext: &Id, now_ms: u64) -> Vec<Binding> {
        self.cache.bindings(tenant, ext, now_ms)
    }

    fn outbound_trunks(&self, tenant: &Id) -> Vec<TrunkRoute> {
        let mut out = Vec::new();
        let mut next = self
            .cache
            .tenant(tenant)
            .and_then(|t| t.calls.outbound_trunk);
        // The control plane refuses failover cycles; the bound is for a cache caught
        // between two updates.
        while let Some(id) = next.take() {
            if out.len() >= 8 || out.iter().any(|t: &TrunkRoute| t.id == id) {
                break;
            }
            let Some(trunk) = self.cache.trunk(tenant, &id) else {
                break;
            };
            next = trunk.failover.clone();
            if self.b2b.trunk_full(&trunk) {
                continue;
            }
            out.push(TrunkRoute {
                id: trunk.id,
                address: trunk.address,
                transport: trunk.transport,
            });
        }
        out
    }

    fn caller_id(&self, tenant: &Id) -> Option<String> {
        self.cache.tenant(tenant).and_then(|t| t.calls.caller_id)
    }

    fn is_busy(&self, tenant: &Id, ext: &Id) -> bool {
        self.b2b.is_busy(tenant, ext)
    }

    fn has_queue(&self, tenant: &Id, id: &Id) -> bool {
        self.cache.queue(tenant, id).is_some()
    }
}
