//! Shipping segments into the store and querying it.

use std::fs;

use super::*;
use crate::cdr::CdrStore;
use crate::cdr::store::UNPARSED_DIR;

const HOUR: u64 = 3_600_000;
const DAY: u64 = 24 * HOUR;

fn lines(cdrs: &[Cdr]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in cdrs {
        out.extend(serde_json::to_vec(c).expect("encodes"));
        out.push(b'\n');
    }
    out
}

fn ids(cdrs: &[Cdr]) -> Vec<&str> {
    cdrs.iter().map(|c| c.id.as_str()).collect()
}

fn with_id(mut cdr: Cdr, id: &str) -> Cdr {
    cdr.id = id.into();
    cdr
}

#[test]
fn a_segment_is_filed_by_tenant_and_day() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = CdrStore::local(dir.path());
    let cdrs = [
        with_id(answered("acme", T, 1_000), "a1"),
        with_id(answered("acme", T + DAY, 1_000), "a2"),
        with_id(answered("beta", T, 1_000), "b1"),
    ];
    let report = store
        .ship_segment("node-a", "0001-aa", &lines(&cdrs))
        .expect("ships");
    assert_eq!(
        (report.records, report.files, report.unparsed, report.torn),
        (3, 3, 0, 0)
    );
    for (path, id) in [
        ("acme/2026-11-24/node-a-0001-aa.jsonl", "a1"),
        ("acme/2026-11-25/node-a-0001-aa.jsonl", "a2"),
        ("beta/2026-11-24/node-a-0001-aa.jsonl", "b1"),
    ] {
        let text = fs::read_to_string(dir.path().join(path)).expect(path);
        assert!(text.contains(&format!("\"id\":\"{id}\"")), "{path}: {text}");
        assert!(text.ends_with('\n'));
    }
    // No temporary files are left behind.
    let leftovers: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|p| p.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

#[test]
fn shipping_again_after_a_crash_does_not_duplicate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = CdrStore::local(dir.path());
    let data = lines(&[answered("acme", T, 1_000), answered("acme", T + 1, 1_000)]);
    store
        .ship_segment("node-a", "0001-aa", &data)
        .expect("ships");
    store
        .ship_segment("node-a", "0001-aa", &data)
        .expect("ships again");
    let found = store.list("acme", 0, u64::MAX, 100).expect("lists");
    assert_eq!(found.len(), 2);
}

#[test]
fn junk_and_torn_lines_are_kept_aside_or_dropped_never_mixed_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = CdrStore::local(dir.path());
    let mut data = lines(&[answered("acme", T, 1_000)]);
    data.extend_from_slice(b"not json at all\n");
    data.extend(lines(&[answered("../etc", T, 1_000)]));
    data.extend_from_slice(b"\n");
    data.extend_from_slice(b"{\"id\":\"torn\",\"tena");
    let report = store
        .ship_segment("node-a", "0002-bb", &data)
        .expect("ships");
    assert_eq!((report.records, report.unparsed, report.torn), (1, 2, 1));
    let aside = fs::read_to_string(dir.path().join(UNPARSED_DIR).join("node-a-0002-bb.jsonl"))
        .expect("unparsed file");
    assert!(aside.contains("not json at all"));
    assert!(aside.contains("../etc"));
    assert!(!aside.contains("torn"));
    assert_eq!(store.list("acme", 0, u64::MAX, 10).expect("lists").len(), 1);
    // A line damaged later in a store file is skipped by queries, not fatal.
    let file = dir.path().join("acme/2026-11-24/node-a-0002-bb.jsonl");
    let mut text = fs::read_to_string(&file).expect("read");
    text.push_str("garbage\n");
    fs::write(&file, text).expect("write");
    assert_eq!(store.list("acme", 0, u64::MAX, 10).expect("lists").len(), 1);
}

/// acme: calls every 6 hours over three days (12 calls), spread over two segments;
/// beta: one call.
fn populated() -> (tempfile::TempDir, CdrStore, Vec<Cdr>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = CdrStore::local(dir.path());
    let day_start = T - 8 * HOUR; // 2026-11-24T00:00:00Z
    let calls: Vec<Cdr> = (0..12)
        .map(|i| {
            with_id(
                answered("acme", day_start + i * 6 * HOUR, 1_000),
                &format!("a{i:02}"),
            )
        })
        .collect();
    // Segments hold calls by end time, not setup: mix them up.
    let (odd, even): (Vec<Cdr>, Vec<Cdr>) = calls
        .iter()
        .cloned()
        .partition(|c| c.id.ends_with(['1', '3', '5', '7', '9']));
    store
        .ship_segment("node-a", "0001-aa", &lines(&odd))
        .expect("ships");
    store
        .ship_segment("node-b", "0002-bb", &lines(&even))
        .expect("ships");
    store
        .ship_segment(
            "node-a",
            "0003-cc",
            &lines(&[with_id(answered("beta", T, 1), "b0")]),
        )
        .expect("ships");
    (dir, store, calls)
}

#[test]
fn queries_are_newest_first_limited_and_bounded() {
    let (_dir, store, calls) = populated();
    let all = store.list("acme", 0, u64::MAX, 100).expect("lists");
    let mut want: Vec<&str> = calls.iter().map(|c| c.id.as_str()).collect();
    want.reverse();
    assert_eq!(ids(&all), want);
    // A limit smaller than the newest day: the newest calls, even across segments.
    let three = store.list("acme", 0, u64::MAX, 3).expect("lists");
    assert_eq!(ids(&three), ["a11", "a10", "a09"]);
    // A limit crossing into an older day.
    let six = store.list("acme", 0, u64::MAX, 6).expect("lists");
    assert_eq!(ids(&six), ["a11", "a10", "a09", "a08", "a07", "a06"]);
    // since is inclusive, until exclusive.
    let (since, until) = (calls[3].setup_ms, calls[6].setup_ms);
    let window = store.list("acme", since, until, 100).expect("lists");
    assert_eq!(ids(&window), ["a05", "a04", "a03"]);
    // Empty and inverted windows.
    assert!(
        store
            .list("acme", until, until, 100)
            .expect("lists")
            .is_empty()
    );
    assert!(
        store
            .list("acme", until, since, 100)
            .expect("lists")
            .is_empty()
    );
    assert!(
        store
            .list("acme", 0, u64::MAX, 0)
            .expect("lists")
            .is_empty()
    );
}

#[test]
fn queries_see_only_the_tenant_asked_for() {
    let (_dir, store, _) = populated();
    assert_eq!(
        ids(&store.list("beta", 0, u64::MAX, 100).expect("lists")),
        ["b0"]
    );
    assert!(
        store
            .list("gamma", 0, u64::MAX, 100)
            .expect("lists")
            .is_empty()
    );
    // Names that could climb out of the store find nothing.
    for tenant in ["..", "../acme", "acme/../beta", ".", ""] {
        assert!(
            store
                .list(tenant, 0, u64::MAX, 100)
                .expect("lists")
                .is_empty(),
            "{tenant:?}"
        );
    }
    // A file copied by hand into another tenant's folder does not leak: records are
    // checked against the tenant asked for.
    let dir = match &store {
        CdrStore::Local { dir } => dir.clone(),
    };
    fs::copy(
        dir.join("beta/2026-11-24/node-a-0003-cc.jsonl"),
        dir.join("acme/2026-11-24/stray.jsonl"),
    )
    .expect("copy");
    let acme = store.list("acme", 0, u64::MAX, 100).expect("lists");
    assert!(acme.iter().all(|c| c.tenant == "acme"));
}
