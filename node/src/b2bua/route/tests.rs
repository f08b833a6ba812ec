use std::collections::{BTreeSet, HashMap, HashSet};

use tongdai_control_plane::model::{CallSettings, ForwardToMobile, Quotas};

use super::*;

/// The control-plane data of two tenants, in memory.
#[derive(Default)]
struct World {
    tenants: HashMap<Id, Tenant>,
    numbers: HashMap<String, Number>,
    extensions: HashMap<(Id, Id), Extension>,
    bindings: HashMap<(Id, Id), Vec<Binding>>,
    groups: HashMap<(Id, Id), HuntGroup>,
    trunks: HashMap<Id, Vec<TrunkRoute>>,
    caller_ids: HashMap<Id, String>,
    busy: HashSet<(Id, Id)>,
    queues: HashSet<(Id, Id)>,
}

fn id(s: &str) -> Id {
    Id::new(s).unwrap()
}

impl World {
    fn new() -> World {
        let mut w = World::default();
        for t in ["acme", "globex"] {
            w.tenants.insert(
                id(t),
                Tenant {
                    id: id(t),
                    name: t.into(),
                    quotas: Quotas {
                        max_concurrent_calls: 10,
                        max_call_attempts_per_sec: 10,
                        max_registrations: 10,
                    },
                    calls: CallSettings::default(),
                },
            );
        }
        w
    }

    fn ext(&mut self, tenant: &str, ext: &str, registered: bool) -> &mut Extension {
        let key = (id(tenant), id(ext));
        if registered {
            let port = 6000 + ext.parse::<u16>().unwrap_or(0) % 1000;
            self.bindings.insert(
                key.clone(),
                vec![Binding {
                    contact: format!("sip:{ext}@10.0.0.5:{port}"),
                    expires_at_ms: 10_000_000,
                    q: 1000,
                    call_id: "c".into(),
                    cseq: 1,
                    source: format!("203.0.113.5:{port}").parse().unwrap(),
                    transport: Transport::Udp,
                    params: String::new(),
                }],
            );
        }
        self.extensions.entry(key).or_insert(Extension {
            tenant: id(tenant),
            ext: id(ext),
            display_name: ext.into(),
            ha1_md5: "0".repeat(32),
            ha1_sha256: "0".repeat(64),
            forward_to_mobile: None,
        })
    }

    fn add_number(&mut self, tenant: &str, digits: &str, kind: NumberKind, dest: Destination) {
        self.numbers.insert(
            digits.into(),
            Number {
                digits: digits.into(),
                kind,
                tenant: id(tenant),
                tariff_band: (kind == NumberKind::Premium1900).then(|| id("band-a")),
                destination: dest,
                recording: None,
            },
        );
    }

    fn group(&mut self, tenant: &str, gid: &str, members: &[&str], strategy: RingStrategy) {
        self.groups.insert(
            (id(tenant), id(gid)),
            HuntGroup {
                tenant: id(tenant),
                id: id(gid),
                members: members.iter().map(|m| id(m)).collect(),
                strategy,
                ring_secs: 15,
                no_answer: Destination::Extension(id("1009")),
            },
        );
    }

    fn trunk(&mut self, tenant: &str, names: &[&str]) {
        self.trunks.insert(
            id(tenant),
            names
                .iter()
                .enumerate()
                .map(|(i, n)| TrunkRoute {
                    id: id(n),
                    address: format!("198.51.100.{}:5060", i + 1),
                    transport: Transport::Udp,
                })
                .collect(),
        );
    }
}

impl Directory for World {
    fn tenant(&self, t: &Id) -> Option<Tenant> {
        self.tenants.get(t).cloned()
    }
    fn number(&self, digits: &str) -> Option<Number> {
        self.numbers.get(digits).cloned()
    }
    fn extension(&self, t: &Id, e: &Id) -> Option<Extension> {
        self.extensions.get(&(t.clone(), e.clone())).cloned()
    }
    fn hunt_group(&self, t: &Id, g: &Id) -> Option<HuntGroup> {
        self.groups.get(&(t.clone(), g.clone())).cloned()
    }
    fn bindings(&self, t: &Id, e: &Id, _now_ms: u64) -> Vec<Binding> {
        self.bindings
            .get(&(t.clone(), e.clone()))
            .cloned()
            .unwrap_or_default()
    }
    fn outbound_trunks(&self, t: &Id) -> Vec<TrunkRoute> {
        self.trunks.get(t).cloned().unwrap_or_default()
    }
    fn caller_id(&self, t: &Id) -> Option<String> {
        self.caller_ids.get(t).cloned()
    }
    fn is_busy(&self, t: &Id, e: &Id) -> bool {
        self.busy.contains(&(t.clone(), e.clone()))
    }
    fn has_queue(&self, t: &Id, q: &Id) -> bool {
        self.queues.contains(&(t.clone(), q.clone()))
    }
}

fn from_trunk(tenant: &str) -> Caller {
    Caller::Trunk {
        tenant: id(tenant),
        trunk: id("carrier"),
    }
}

fn from_ext(tenant: &str, ext: &str) -> Caller {
    Caller::Extension {
        tenant: id(tenant),
        ext: id(ext),
    }
}

fn labels(step: &Step) -> Vec<&str> {
    step.targets.iter().map(|t| t.label.as_str()).collect()
}

#[test]
fn a_trunk_call_to_a_tenant_number_goes_to_its_destination() {
    let mut w = World::new();
    w.add_number(
        "acme",
        "18001234",
        NumberKind::TollFree1800,
        Destination::HuntGroup(id("sales")),
    );
    let p = plan(&w, &from_trunk("acme"), "18001234", "0912345678").unwrap();
    assert_eq!(p.direction, Direction::Inbound);
    assert_eq!(p.destination, Destination::HuntGroup(id("sales")));
    assert_eq!(p.number.unwrap().kind, NumberKind::TollFree1800);
    assert_eq!(p.caller_id, "0912345678");
    // Another tenant's trunk cannot deliver acme's number.
    let r = plan(&w, &from_trunk("globex"), "18001234", "x").unwrap_err();
    assert_eq!(r.status, 404);
    assert_eq!(
        plan(&w, &from_trunk("acme"), "18009999", "x")
            .unwrap_err()
            .status,
        404
    );
}

#[test]
fn extension_to_extension_is_internal_and_never_crosses_tenants() {
    let mut w = World::new();
    w.ext("acme", "1001", true);
    w.ext("acme", "1002", true);
    w.ext("globex", "2001", true);
    let p = plan(&w, &from_ext("acme", "1001"), "1002", "1001").unwrap();
    assert_eq!(p.direction, Direction::Internal);
    assert_eq!(p.destination, Destination::Extension(id("1002")));
    assert_eq!(p.caller_id, "1001");
    // globex's extension is not reachable from acme: not found (not an external number
    // either, being 4 digits is fine for external, so it would need a trunk).
    let r = plan(&w, &from_ext("acme", "1001"), "2001", "1001").unwrap_err();
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.reason.contains("outbound trunk") || r.reason.contains("caller ID"));
}

#[test]
fn outbound_calls_present_the_tenant_did_and_refuse_1800_and_1900_caller_ids() {
    let mut w = World::new();
    w.ext("acme", "1001", true);
    w.trunk("acme", &["main"]);
    w.caller_ids.insert(id("acme"), "02873001234".into());
    w.add_number(
        "acme",
        "02873009999",
        NumberKind::Geographic,
        Destination::Extension(id("1001")),
    );
    w.add_number(
        "acme",
        "18001234",
        NumberKind::TollFree1800,
        Destination::Extension(id("1001")),
    );
    let p = plan(&w, &from_ext("acme", "1001"), "0912345678", "1001").unwrap();
    assert_eq!(p.direction, Direction::Outbound);
    assert_eq!(p.caller_id, "02873001234");
    // A geographic DID of the tenant may be presented.
    let p = plan(&w, &from_ext("acme", "1001"), "0912345678", "02873009999").unwrap();
    assert_eq!(p.caller_id, "02873009999");
    // A toll-free or premium number may not, whoever owns it.
    for asked in ["18001234", "19006868", "1800123456"] {
        let r = plan(&w, &from_ext("acme", "1001"), "0912345678", asked).unwrap_err();
        assert_eq!(r.status, 403);
        assert!(r.reason.contains("inbound only"), "{}", r.reason);
    }
    // +84 international format is normalized.
    let p = plan(&w, &from_ext("acme", "1001"), "+84912345678", "1001").unwrap();
    assert_eq!(p.dialled, "0912345678");
}

#[test]
fn dialling_the_tenants_own_number_from_an_extension_stays_internal() {
    let mut w = World::new();
    w.ext("acme", "1001", true);
    w.add_number(
        "acme",
        "18001234",
        NumberKind::TollFree1800,
        Destination::HuntGroup(id("sales")),
    );
    let p = plan(&w, &from_ext("acme", "1001"), "18001234", "1001").unwrap();
    assert_eq!(p.direction, Direction::Internal);
    assert_eq!(p.destination, Destination::HuntGroup(id("sales")));
}

#[test]
fn ring_all_rings_every_registered_idle_member_then_the_no_answer_destination() {
    let mut w = World::new();
    w.ext("acme", "1001", true);
    w.ext("acme", "1002", true);
    w.ext("acme", "1003", false);
    w.ext("acme", "1004", true);
    w.ext("acme", "1009", true);
    w.busy.insert((id("acme"), id("1004")));
    w.group(
        "acme",
        "sales",
        &["1001", "1002", "1003", "1004"],
        RingStrategy::RingAll,
    );
    let steps = expand(&w, &id("acme"), &Destination::HuntGroup(id("sales")), 0).unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(labels(&steps[0]), ["extension:1001", "extension:1002"]);
    assert_eq!(steps[0].ring, Duration::from_secs(15));
    assert_eq!(
        steps[0].after_no_answer,
        Some(Destination::Extension(id("1009")))
    );
    assert_eq!(
        steps[0].targets[0].send_to,
        SendTo::Addr("203.0.113.5:6001".parse().unwrap())
    );
}

#[test]
fn sequential_hunt_skips_unregistered_and_busy_members_in_order() {
    let mut w = World::new();
    w.ext("acme", "1001", false);
    w.ext("acme", "1002", true);
    w.ext("acme", "1003", true);
    w.ext("acme", "1004", true);
    w.busy.insert((id("acme"), id("1003")));
    w.group(
        "acme",
        "sales",
        &["1004", "1001", "1003", "1002"],
        RingStrategy::Sequential,
    );
    let steps = expand(&w, &id("acme"), &Destination::HuntGroup(id("sales")), 0).unwrap();
    let order: Vec<_> = steps.iter().map(|s| labels(s)[0]).collect();
    assert_eq!(order, ["extension:1004", "extension:1002"]);
    assert_eq!(steps[0].after_no_answer, None);
    assert_eq!(
        steps[1].after_no_answer,
        Some(Destination::Extension(id("1009")))
    );
}

#[test]
fn an_empty_hunt_group_goes_straight_to_its_no_answer_destination() {
    let mut w = World::new();
    w.ext("acme", "1001", false);
    w.ext("acme", "1009", true);
    w.group("acme", "sales", &["1001"], RingStrategy::RingAll);
    let steps = expand(&w, &id("acme"), &Destination::HuntGroup(id("sales")), 0).unwrap();
    assert_eq!(labels(&steps[0]), ["extension:1009"]);
}

#[test]
fn forward_to_mobile_when_unregistered_busy_or_on_no_answer() {
    let mut w = World::new();
    w.trunk("acme", &["main"]);
    w.ext("acme", "1001", false).forward_to_mobile = Some(ForwardToMobile {
        number: "0912000111".into(),
        when: BTreeSet::from([ForwardCondition::Unregistered, ForwardCondition::NoAnswer]),
    });
    let steps = expand(&w, &id("acme"), &Destination::Extension(id("1001")), 0).unwrap();
    assert_eq!(labels(&steps[0]), ["trunk:main"]);
    assert_eq!(steps[0].targets[0].uri, "sip:0912000111@198.51.100.1:5060");

    // Registered: rings the phone, and no answer forwards.
    w.ext("acme", "1002", true).forward_to_mobile = Some(ForwardToMobile {
        number: "0912000222".into(),
        when: BTreeSet::from([ForwardCondition::NoAnswer]),
    });
    let steps = expand(&w, &id("acme"), &Destination::Extension(id("1002")), 0).unwrap();
    assert_eq!(labels(&steps[0]), ["extension:1002"]);
    assert_eq!(
        steps[0].after_no_answer,
        Some(Destination::External("0912000222".into()))
    );
    assert_eq!(steps[0].after_busy, None);

    // Unregistered without a forward: 480 naming the extension.
    w.ext("acme", "1003", false);
    let r = expand(&w, &id("acme"), &Destination::Extension(id("1003")), 0).unwrap_err();
    assert_eq!(
        (r.status, r.reason.as_str()),
        (480, "Extension 1003 is not registered")
    );
}

#[test]
fn trunk_failover_chains_in_order_and_no_trunk_is_a_clear_refusal() {
    let mut w = World::new();
    w.trunk("acme", &["main", "backup"]);
    let steps = expand(
        &w,
        &id("acme"),
        &Destination::External("0912345678".into()),
        0,
    )
    .unwrap();
    assert_eq!(labels(&steps[0]), ["trunk:main"]);
    assert_eq!(labels(&steps[0].on_failure[0]), ["trunk:backup"]);
    assert!(steps[0].on_failure[0].on_failure.is_empty());
    let r = expand(
        &w,
        &id("globex"),
        &Destination::External("0912345678".into()),
        0,
    )
    .unwrap_err();
    assert_eq!(r.status, 403);
    assert!(r.reason.contains("outbound_trunk"));
}

#[test]
fn normalize_strips_separators_and_the_country_code() {
    assert_eq!(normalize("+84 28-7300.1234"), "02873001234");
    assert_eq!(normalize("1800 1234"), "18001234");
    assert_eq!(normalize("1001"), "1001");
}
