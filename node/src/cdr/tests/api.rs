//! The records served through the real admin API (over the control plane's in-memory
//! cluster, on a loopback port) from real stores: CDRs written by a [`CdrService`] and
//! recordings made by the recorder's spool writer, read with `tongdai ctl`.

use std::collections::BTreeSet;
use std::sync::Arc;

use clap::Parser;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tongdai_control_plane::api::AuthConfig;
use tongdai_control_plane::api::records::Records;
use tongdai_control_plane::api::testing::{MemoryCluster, TestServer};
use tongdai_control_plane::model::{Command, Id, Quotas, Tenant};

use super::*;
use crate::cdr::{CdrLeg, CdrService, CdrStore, NodeRecords, Quality, StreamQuality, now_ms};
use crate::config::Config;
use crate::ctl::{CtlArgs, CtlError, run};
use crate::media::recording::{RecordingMeta, RecordingStore, SpoolWriter};

const OPERATOR: &str = "operator-secret-0123456789";
const MINUTE: u64 = 60_000;

#[derive(Debug, Parser)]
struct TestCli {
    #[command(flatten)]
    args: CtlArgs,
}

fn ctl_as(api: &str, token: &str, args: &[&str]) -> Result<Vec<u8>, CtlError> {
    let mut argv = vec!["ctl", "--api", api, "--token", token];
    argv.extend_from_slice(args);
    let cli = TestCli::try_parse_from(argv).map_err(|e| CtlError::Usage(e.to_string()))?;
    let mut out = Vec::new();
    run(cli.args, &mut out)?;
    Ok(out)
}

fn text(out: Vec<u8>) -> String {
    String::from_utf8(out).expect("UTF-8")
}

/// A world of two tenants with real CDRs and recordings, served on a loopback port.
struct World {
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
    server: TestServer,
    recordings: RecordingStore,
    /// acme's CDRs, oldest first: 3 h, 2 h and 30 min ago.
    acme_cdrs: Vec<Cdr>,
    /// acme's recordings' ids.
    acme_recordings: Vec<String>,
    beta_recording: String,
}

impl World {
    fn url(&self) -> String {
        self.server.url()
    }

    fn ctl(&self, args: &[&str]) -> String {
        text(ctl_as(&self.url(), OPERATOR, args).unwrap_or_else(|e| panic!("{args:?}: {e}")))
    }

    fn ctl_json(&self, args: &[&str]) -> Value {
        let mut with = vec!["--json"];
        with.extend_from_slice(args);
        serde_json::from_str(&self.ctl(&with)).expect("JSON")
    }
}

async fn record(spool: &std::path::Path, store: &RecordingStore, tenant: &str, n: u8) -> String {
    let meta = RecordingMeta::new(tenant, &format!("call-{n}@peer"), now_ms());
    let mut writer = SpoolWriter::create(spool, meta).expect("spool");
    // 100 ms of stereo frames with a recognisable pattern.
    let pcm: Vec<u8> = (0..3_200u32).map(|i| (i as u8).wrapping_mul(n)).collect();
    writer.append(&pcm).expect("append");
    let finished = writer.finish().expect("finish");
    store.ship(&finished).await.expect("ship").summary.id
}

/// Built outside any runtime: the test server runs one of its own.
fn world() -> World {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let (acme_cdrs, recordings, acme_recordings, beta_recording) = rt.block_on(populate(&dir));
    let cluster = MemoryCluster::new();
    for t in ["acme", "beta"] {
        cluster
            .apply(Command::CreateTenant(Tenant {
                id: Id::new(t).expect("id"),
                name: t.into(),
                quotas: Quotas {
                    max_concurrent_calls: 10,
                    max_call_attempts_per_sec: 10,
                    max_registrations: 10,
                },
                calls: tongdai_control_plane::model::CallSettings::default(),
            }))
            .expect("tenant");
    }
    let records: Arc<dyn Records> = Arc::new(NodeRecords::new(
        Some(CdrStore::local(&config(dir.path()).dir)),
        Some(recordings.clone()),
    ));
    let auth = AuthConfig::with_operator_token(OPERATOR).expect("long enough");
    let server = TestServer::start_with_records(cluster, auth, Some(records)).expect("server");
    World {
        rt,
        _dir: dir,
        server,
        recordings,
        acme_cdrs,
        acme_recordings,
        beta_recording,
    }
}

/// acme's CDRs and recordings, and beta's, written by the real writers.
async fn populate(dir: &tempfile::TempDir) -> (Vec<Cdr>, RecordingStore, Vec<String>, String) {
    let config = config(dir.path());
    let now = now_ms();
    let (service, writer) = CdrService::start(config.clone(), "node-a").expect("starts");
    let mut acme_cdrs = Vec::new();
    for ago in [180 * MINUTE, 120 * MINUTE, 30 * MINUTE] {
        let mut cdr = answered("acme", now - ago, 61_000);
        cdr.legs.push(CdrLeg::new("extension:1001", now - ago + 10));
        cdr.quality = Some(Quality {
            caller: StreamQuality {
                packets: 3_000,
                lost: 30,
                loss_ratio: 0.01,
                jitter_ms: 4.0,
                mos: 4.11,
            },
            callee: StreamQuality {
                packets: 3_000,
                lost: 0,
                loss_ratio: 0.0,
                jitter_ms: 1.0,
                mos: 4.39,
            },
        });
        writer.write_durable(cdr.clone()).await.expect("durable");
        acme_cdrs.push(cdr);
    }
    writer
        .write_durable(answered("beta", now - 10 * MINUTE, 5_000))
        .await
        .expect("durable");
    writer.ship_now().await.expect("shipped");
    service.shutdown().await;

    let spool = dir.path().join("spool/recordings");
    let recordings = RecordingStore::Local {
        dir: dir.path().join("recordings"),
    };
    let acme_recordings = vec![
        record(&spool, &recordings, "acme", 1).await,
        record(&spool, &recordings, "acme", 2).await,
    ];
    let beta_recording = record(&spool, &recordings, "beta", 3).await;
    (acme_cdrs, recordings, acme_recordings, beta_recording)
}

/// The cells of a table's lines, split on runs of two or more spaces.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

#[test]
fn cdr_list_shows_a_table_or_the_json_newest_first() {
    let w = world();
    let table = w.ctl(&["cdr", "list", "-t", "acme"]);
    let rows = rows(&table);
    assert_eq!(
        rows[0],
        [
            "TIME",
            "DIRECTION",
            "CALLER",
            "CALLEE",
            "DISPOSITION",
            "DURATION",
            "BILLABLE",
            "MOS"
        ]
    );
    assert_eq!(rows.len(), 4, "{table}");
    let newest = &w.acme_cdrs[2];
    assert_eq!(
        rows[1],
        [
            tongdai_control_plane::api::records::format_time(newest.setup_ms),
            "inbound".into(),
            "0912345678".into(),
            "19006868".into(),
            "answered".into(),
            "63s".into(),
            "61s".into(),
            "4.11".into(),
        ]
    );
    let json = w.ctl_json(&["cdr", "list", "-t", "acme"]);
    let ids: Vec<&str> = json
        .as_array()
        .expect("array")
        .iter()
        .map(|c| c["id"].as_str().expect("id"))
        .collect();
    let want: Vec<&str> = w.acme_cdrs.iter().rev().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, want);
    // The JSON is the record itself.
    let back: Cdr = serde_json::from_value(json[0].clone()).expect("a CDR");
    assert_eq!(&back, newest);

    // --since as an age, --until as RFC 3339, --limit.
    let one_hour = w.ctl_json(&["cdr", "list", "-t", "acme", "--since", "1h"]);
    assert_eq!(one_hour.as_array().map(Vec::len), Some(1));
    let until = tongdai_control_plane::api::records::format_time(w.acme_cdrs[1].setup_ms);
    let before = w.ctl_json(&["cdr", "list", "-t", "acme", "--until", &until]);
    assert_eq!(before[0]["id"], w.acme_cdrs[0].id.as_str());
    let limited = w.ctl_json(&["cdr", "list", "-t", "acme", "--limit", "2"]);
    assert_eq!(limited.as_array().map(Vec::len), Some(2));
}

#[test]
fn cdr_list_mistakes_say_what_to_fix() {
    let w = world();
    let url = w.url();
    let e = ctl_as(&url, OPERATOR, &["cdr", "list"]).expect_err("no tenant");
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("--tenant"), "{e}");
    let e = ctl_as(
        &url,
        OPERATOR,
        &["cdr", "list", "-t", "acme", "--since", "last week"],
    )
    .expect_err("bad time");
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("RFC 3339"), "{e}");
    // The API names the field it refuses.
    let e = ctl_as(
        &url,
        OPERATOR,
        &["cdr", "list", "-t", "acme", "--limit", "0"],
    )
    .expect_err("bad limit");
    assert_eq!(e.exit_code(), 1);
    let message = e.to_string();
    assert!(
        message.contains("field: limit") && message.contains("HTTP 400"),
        "{message}"
    );
    let e = ctl_as(
        &url,
        OPERATOR,
        &[
            "cdr", "list", "-t", "acme", "--since", "1h", "--until", "2h",
        ],
    )
    .expect_err("inverted window");
    assert!(e.to_string().contains("field: until"), "{e}");
}

#[test]
fn recordings_are_listed_downloaded_and_deleted() {
    let w = world();
    let table = w.ctl(&["recording", "list", "-t", "acme"]);
    let rows = rows(&table);
    assert_eq!(
        rows[0],
        ["ID", "STARTED", "DURATION", "BYTES", "COMPLETE", "CALL_ID"]
    );
    let listed: BTreeSet<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    let want: BTreeSet<&str> = w.acme_recordings.iter().map(String::as_str).collect();
    assert_eq!(listed, want);

    let id = &w.acme_recordings[0];
    let meta = w.ctl_json(&["recording", "get", "-t", "acme", id]);
    assert_eq!(meta["id"], id.as_str());
    assert_eq!(
        meta["duration_ms"], 100,
        "3,200 bytes of 16-bit stereo at 8 kHz"
    );

    // The audio, to a file and to stdout: byte for byte the stored WAV.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("out.wav");
    let file_arg = file.display().to_string();
    let said = w.ctl(&["recording", "get", "-t", "acme", id, "--output", &file_arg]);
    assert!(said.starts_with("wrote "), "{said}");
    let stored = w.recordings.audio("acme", id);
    let stored = w.rt.block_on(stored).expect("reads").expect("stored");
    let downloaded = std::fs::read(&file).expect("downloaded");
    assert_eq!(downloaded, stored.as_ref());
    assert!(downloaded.starts_with(b"RIFF"));
    assert_eq!(
        hex::encode(Sha256::digest(&downloaded)),
        meta["sha256"].as_str().expect("sha256")
    );
    let piped = ctl_as(
        &w.url(),
        OPERATOR,
        &["recording", "get", "-t", "acme", id, "-o", "-"],
    )
    .expect("stdout");
    assert_eq!(piped, downloaded);

    let said = w.ctl(&["recording", "delete", "-t", "acme", id]);
    assert_eq!(said.trim(), format!("deleted recording {id}"));
    assert_eq!(
        w.rt.block_on(w.recordings.list("acme"))
            .expect("lists")
            .len(),
        1
    );
    let url = w.url();
    for args in [
        vec!["recording", "get", "-t", "acme", id.as_str()],
        vec!["recording", "get", "-t", "acme", id.as_str(), "-o", "-"],
        vec!["recording", "delete", "-t", "acme", id.as_str()],
    ] {
        let e = ctl_as(&url, OPERATOR, &args).expect_err("gone");
        assert!(
            e.to_string().contains("HTTP 404 unknown_recording"),
            "{args:?}: {e}"
        );
    }
}

#[test]
fn a_tenant_token_reaches_only_its_own_records() {
    let w = world();
    let created = w.ctl_json(&["token", "create", "ci", "-t", "acme"]);
    let acme = created["token"].as_str().expect("token").to_owned();
    let url = w.url();
    let mine = ctl_as(&url, &acme, &["--json", "cdr", "list", "-t", "acme"]).expect("own CDRs");
    let mine: Value = serde_json::from_slice(&mine).expect("JSON");
    assert!(
        mine.as_array()
            .expect("array")
            .iter()
            .all(|c| c["tenant"] == "acme")
    );
    assert_eq!(mine.as_array().map(Vec::len), Some(3));
    let beta = w.beta_recording.clone();
    for args in [
        vec!["cdr", "list", "-t", "beta"],
        vec!["recording", "list", "-t", "beta"],
        vec!["recording", "get", "-t", "beta", beta.as_str()],
        vec!["recording", "get", "-t", "beta", beta.as_str(), "-o", "-"],
        vec!["recording", "delete", "-t", "beta", beta.as_str()],
    ] {
        let e = ctl_as(&url, &acme, &args).expect_err("not mine");
        assert!(
            e.to_string().contains("HTTP 404 unknown_tenant"),
            "{args:?}: {e}"
        );
    }
    // beta's recording asked for under acme is not found either.
    let e = ctl_as(
        &url,
        &acme,
        &["recording", "get", "-t", "acme", beta.as_str()],
    )
    .expect_err("not mine");
    assert!(e.to_string().contains("unknown_recording"), "{e}");
    assert_eq!(
        w.rt.block_on(w.recordings.list("beta"))
            .expect("lists")
            .len(),
        1
    );
}

#[test]
fn records_config_picks_the_stores_or_switches_them_off() {
    let load = |toml: &str| Config::from_toml_str(toml, &[]).expect("valid").config;
    let c = load("[node]\nname = \"n1\"\n[replica]\ndata_dir = \"/srv/td\"");
    assert_eq!(c.cdr.dir, "/srv/td/cdrs");
    assert_eq!(c.cdr.spool_dir, "/srv/td/spool/n1/cdrs");
    assert_eq!(
        c.records.cdr_dir(&c.cdr),
        Some(std::path::PathBuf::from("/srv/td/cdrs"))
    );
    assert_eq!(
        c.records.recordings_dir(&c.replica),
        Some(std::path::PathBuf::from("/srv/td/recordings"))
    );
    assert!(NodeRecords::from_config(&c).is_some());
    let c = load("[records]\ncdr_dir = \"off\"\nrecordings_dir = \"OFF\"");
    assert!(NodeRecords::from_config(&c).is_none());
    let c = load(
        "[node]\nname = \"n1\"\n[cdr]\ndir = \"/mnt/cdrs\"\n[records]\nrecordings_dir = \"/mnt/rec\"",
    );
    assert_eq!(
        c.records.cdr_dir(&c.cdr),
        Some(std::path::PathBuf::from("/mnt/cdrs")),
        "the API reads where this process's node ships"
    );
    assert_eq!(c.cdr.spool_dir, "tongdai-data/spool/n1/cdrs");
}

#[tokio::test]
async fn a_kind_switched_off_is_501_naming_the_key() {
    let records = NodeRecords::new(None, None);
    let e = records
        .cdrs(
            "acme".into(),
            tongdai_control_plane::api::records::CdrQuery {
                since_ms: 0,
                until_ms: u64::MAX,
                limit: 1,
            },
        )
        .await
        .expect_err("off");
    assert!(e.to_string().contains("records.cdr_dir"), "{e}");
    let e = records.recordings("acme".into()).await.expect_err("off");
    assert!(e.to_string().contains("records.recordings_dir"), "{e}");
}

/// The OpenAPI document describes exactly the fields the node writes.
#[test]
fn openapi_schemas_match_the_records_json() {
    let doc = serde_json::to_value(tongdai_control_plane::api::openapi()).expect("doc");
    let schema_keys = |name: &str| -> BTreeSet<String> {
        doc["components"]["schemas"][name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{name} has properties"))
            .keys()
            .cloned()
            .collect()
    };
    let json_keys = |v: &Value| -> BTreeSet<String> {
        v.as_object().expect("object").keys().cloned().collect()
    };
    let mut cdr = answered("acme", T, 1_000);
    cdr.legs.push(CdrLeg::new("extension:1001", T));
    let quality = StreamQuality {
        packets: 1,
        lost: 0,
        loss_ratio: 0.0,
        jitter_ms: 0.0,
        mos: 4.0,
    };
    cdr.quality = Some(Quality {
        caller: quality.clone(),
        callee: quality,
    });
    cdr.recording_id = Some("r".into());
    let v = serde_json::to_value(&cdr).expect("encodes");
    assert_eq!(json_keys(&v), schema_keys("CdrView"));
    assert_eq!(json_keys(&v["legs"][0]), schema_keys("CdrLegView"));
    assert_eq!(json_keys(&v["rating"]), schema_keys("RatingView"));
    assert_eq!(json_keys(&v["quality"]), schema_keys("QualityView"));
    assert_eq!(
        json_keys(&v["quality"]["caller"]),
        schema_keys("StreamQualityView")
    );
    let summary = crate::media::recording::RecordingSummary {
        id: "r".into(),
        tenant: "acme".into(),
        call_id: "c".into(),
        started_unix_ms: 0,
        duration_ms: 0,
        bytes: 0,
        sha256: String::new(),
        format: String::new(),
        complete: true,
        repaired: false,
    };
    let v = serde_json::to_value(&summary).expect("encodes");
    assert_eq!(json_keys(&v), schema_keys("RecordingView"));
}
