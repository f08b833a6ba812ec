//! Call records end to end: a real `tongdai up` serves, through its admin API and to the
//! real `tongdai ctl`, the CDRs and recordings found in the stores under its data
//! directory (written here by the real CDR service and recorder spool). Calls that
//! produce them are the B2BUA's tests.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake};

use serde_json::Value;
use tongdai_node::cdr::{Cdr, CdrConfig, CdrService, Direction, Disposition, HangupBy, now_ms};
use tongdai_node::media::recording::store::utc_day;
use tongdai_node::media::recording::{RecordingMeta, RecordingStore, SpoolWriter};
use tongdai_tests::{Node, http_request};

/// Runs a future to completion on this thread. The CDR writer and shipping to a local
/// recordings store need no async runtime: their futures are woken from the CDR
/// threads or are ready at once.
fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

fn answered(tenant: &str, setup_ms: u64) -> Cdr {
    let mut cdr = Cdr::new(
        tenant,
        "e2e-node",
        format!("{setup_ms}@caller"),
        Direction::Inbound,
        "0912345678",
        "18001234",
        setup_ms,
    );
    cdr.destination = "hunt_group:sales".into();
    cdr.answer_ms = Some(setup_ms + 1_500);
    cdr.disposition = Disposition::Answered;
    cdr.sip_status = 200;
    cdr.hangup_by = HangupBy::Callee;
    cdr.hangup_reason = "bye".into();
    cdr.finish(setup_ms + 1_500 + 42_000);
    cdr
}

#[test]
fn tongdai_up_serves_the_records_under_its_data_dir() {
    let node = Node::start("");
    let data = node.dir.path().join("data");
    let token_file = data.join("operator.token");
    let token = std::fs::read_to_string(&token_file).expect("operator token");
    let token = token.trim();

    // CDRs shipped into <data>/cdrs, where `tongdai up` reads by default.
    let config = CdrConfig {
        spool_dir: node.dir.path().join("test-spool").display().to_string(),
        ..CdrConfig::under(&data.display().to_string())
    };
    let (service, writer) = CdrService::start(config, "e2e-node").expect("CDR service");
    let now = now_ms();
    let cdrs: Vec<Cdr> = [3_600_000, 600_000, 60_000]
        .iter()
        .map(|ago| answered("tongdai", now - ago))
        .collect();
    for cdr in &cdrs {
        block_on(writer.write_durable(cdr.clone())).expect("durable");
    }
    block_on(writer.write_durable(answered("beta", now))).expect("durable");
    block_on(writer.ship_now()).expect("shipped");
    drop(service);

    // A recording in <data>/recordings.
    let store = RecordingStore::Local {
        dir: data.join("recordings"),
    };
    let meta = RecordingMeta::new("tongdai", &cdrs[2].call_id, now);
    let mut spool = SpoolWriter::create(&node.dir.path().join("rec-spool"), meta).expect("spool");
    spool.append(&[7u8; 16_000]).expect("audio");
    let finished = spool.finish().expect("finish");
    let recording = block_on(store.ship(&finished)).expect("ship").summary;

    // The API, newest first.
    let (code, body) = http_request(node.api, "GET", "/v1/tenants/tongdai/cdrs", token, None)
        .expect("API answers");
    assert_eq!(code, 200, "{body}");
    let list: Value = serde_json::from_str(&body).expect("JSON");
    let ids: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|c| c["id"].as_str().expect("id"))
        .collect();
    let want: Vec<&str> = cdrs.iter().rev().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, want);
    assert_eq!(list[0]["billable_secs"], 42);

    // Bad input names the field.
    let (code, body) = http_request(
        node.api,
        "GET",
        "/v1/tenants/tongdai/cdrs?since=last-tuesday",
        token,
        None,
    )
    .expect("API answers");
    assert_eq!(code, 400, "{body}");
    let error: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(error["field"], "since", "{body}");

    // The real ctl: a table, a window, and the recording's audio byte for byte.
    let (code, out, err) = node.ctl(&["cdr", "list", "-t", "tongdai"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(
        out.lines().nth(1).is_some_and(|l| l.contains("answered")),
        "{out}"
    );
    let (code, out, err) = node.ctl(&["--json", "cdr", "list", "-t", "tongdai", "--since", "30m"]);
    assert_eq!(code, 0, "{err}");
    let recent: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(recent.as_array().map(Vec::len), Some(2), "{out}");
    let (code, _, err) = node.ctl(&["cdr", "list", "-t", "tongdai", "--since", "soon"]);
    assert_eq!(code, 2, "a usage error: {err}");
    assert!(err.contains("--since"), "{err}");

    let wav = node.dir.path().join("download.wav");
    let (code, _, err) = node.ctl(&[
        "recording",
        "get",
        "-t",
        "tongdai",
        &recording.id,
        "--output",
        &wav.display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    let stored_wav = data
        .join("recordings/tongdai")
        .join(utc_day(recording.started_unix_ms))
        .join(format!("{}.wav", recording.id));
    let stored = std::fs::read(&stored_wav).expect("stored");
    assert_eq!(std::fs::read(&wav).expect("downloaded"), stored);

    // A tenant token sees its own records only; beta is not even a tenant here.
    let (code, body) = http_request(
        node.api,
        "POST",
        "/v1/tenants/tongdai/tokens",
        token,
        Some("{\"id\":\"e2e\"}"),
    )
    .expect("API answers");
    assert_eq!(code, 201, "{body}");
    let tenant_token: Value = serde_json::from_str(&body).expect("JSON");
    let tenant_token = tenant_token["token"].as_str().expect("token");
    let (code, _) = http_request(
        node.api,
        "GET",
        "/v1/tenants/tongdai/recordings",
        tenant_token,
        None,
    )
    .expect("API answers");
    assert_eq!(code, 200);
    let (code, body) = http_request(node.api, "GET", "/v1/tenants/beta/cdrs", tenant_token, None)
        .expect("API answers");
    assert_eq!(code, 404, "{body}");

    // Deleted through the API, gone from the store.
    let (code, body) = http_request(
        node.api,
        "DELETE",
        &format!("/v1/tenants/tongdai/recordings/{}", recording.id),
        tenant_token,
        None,
    )
    .expect("API answers");
    assert_eq!(code, 204, "{body}");
    assert!(!stored_wav.exists());
    assert!(!stored_wav.with_extension("json").exists());
}
