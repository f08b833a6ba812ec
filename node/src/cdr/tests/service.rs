//! The spool service on real files: group commit, acknowledgement after fsync, rolling
//! and shipping, crash recovery (torn lines), a store that is down, and shutdown.

use std::fs;
use std::path::PathBuf;

use super::*;
use crate::cdr::spool::{self, SEGMENT_EXT};
use crate::cdr::{CdrService, CdrStore};

fn spool_files(config: &CdrConfig) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(&config.spool_dir)
        .expect("spool dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == SEGMENT_EXT))
        .collect();
    files.sort();
    files
}

fn listed(config: &CdrConfig, tenant: &str) -> Vec<Cdr> {
    CdrStore::local(&config.dir)
        .list(tenant, 0, u64::MAX, 100_000)
        .expect("lists")
}

#[tokio::test]
async fn many_writes_are_committed_in_few_fsyncs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = CdrConfig {
        batch_max_ms: 50,
        batch_max_records: 100_000,
        segment_max_ms: 3_600_000,
        ..config(dir.path())
    };
    let (service, writer) = CdrService::start(config.clone(), "node-a").expect("starts");
    for i in 0..2_000 {
        writer.write(answered("acme", T + i, 1_000));
    }
    let last = answered("acme", T + 5_000, 1_000);
    writer.write_durable(last.clone()).await.expect("durable");
    let stats = service.stats();
    assert_eq!(stats.records_written, 2_001, "{stats:?}");
    // Queued in well under the 50 ms window: a handful of batches, not 2,001 fsyncs.
    assert!(stats.fsyncs <= 10, "{stats:?}");
    assert_eq!(stats.fsyncs, stats.batches, "{stats:?}");
    // Acknowledged means on disk: the line is in the spool segment now.
    let files = spool_files(&config);
    assert_eq!(files.len(), 1, "{files:?}");
    let text = fs::read_to_string(&files[0]).expect("segment");
    assert_eq!(text.lines().count(), 2_001);
    assert!(text.contains(&last.id));
    service.shutdown().await;
    assert_eq!(listed(&config, "acme").len(), 2_001);
    assert!(spool_files(&config).is_empty(), "shipped, then removed");
}

#[tokio::test]
async fn batches_are_capped_by_record_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = CdrConfig {
        batch_max_ms: 1_000,
        batch_max_records: 10,
        ..config(dir.path())
    };
    let (service, writer) = CdrService::start(config, "node-a").expect("starts");
    for i in 0..99 {
        writer.write(answered("acme", T + i, 1_000));
    }
    writer
        .write_durable(answered("acme", T + 100, 1_000))
        .await
        .expect("durable");
    let stats = service.stats();
    assert_eq!(stats.records_written, 100);
    assert!(stats.batches >= 10, "{stats:?}");
    service.shutdown().await;
}

#[tokio::test]
async fn segments_roll_by_size_and_all_reach_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = CdrConfig {
        batch_max_records: 5,
        segment_max_bytes: 4_096,
        segment_max_ms: 3_600_000,
        ..config(dir.path())
    };
    let (service, writer) = CdrService::start(config.clone(), "node-a").expect("starts");
    for i in 0..60 {
        writer
            .write_durable(answered("acme", T + i, 1_000))
            .await
            .expect("durable");
    }
    writer.ship_now().await.expect("shipped");
    let stats = service.stats();
    assert!(stats.segments_closed >= 5, "{stats:?}");
    assert_eq!(stats.segments_shipped, stats.segments_closed);
    assert_eq!(stats.records_shipped, 60);
    assert_eq!(stats.spool_bytes, 0);
    assert_eq!(listed(&config, "acme").len(), 60);
    service.shutdown().await;
}

#[tokio::test]
async fn a_segment_is_shipped_when_it_gets_old() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = CdrConfig {
        segment_max_ms: 50,
        ..config(dir.path())
    };
    let (service, writer) = CdrService::start(config.clone(), "node-a").expect("starts");
    writer
        .write_durable(answered("acme", T, 1_000))
        .await
        .expect("durable");
    // Nothing else is written: the age limit alone ships it.
    let shipped = wait_until(Duration::from_secs(5), || {
        listed(&config, "acme").len() == 1
    });
    assert!(shipped, "{:?}", service.stats());
    assert!(wait_until(Duration::from_secs(5), || spool_files(&config).is_empty()));
    service.shutdown().await;
}

#[tokio::test]
async fn a_graceful_shutdown_writes_and_ships_everything_queued() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = CdrConfig {
        batch_max_ms: 200,
        segment_max_ms: 3_600_000,
        ..config(dir.path())
    };
    let (service, writer) = CdrService::start(config.clone(), "node-a").expect("starts");
    for i in 0..500 {
        writer.write(answered("beta", T + i, 1_000));
    }
    service.shutdown().await;
    assert_eq!(listed(&config, "beta").len(), 500);
    assert!(spool_files(&config).is_empty());
    // After the stop, a durable write says it was not written.
    let e = writer
        .write_durable(answered("beta", T, 1))
        .await
        .expect_err("stopped");
    assert!(e.to_string().contains("stopped"), "{e}");
}

#[tokio::test]
async fn a_torn_line_left_by_a_crash_is_cut_and_the_rest_shipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path());
    fs::create_dir_all(&config.spool_dir).expect("spool");
    // What a crash mid-write leaves: two whole lines and half of a third.
    let whole = [answered("acme", T, 1_000), answered("acme", T + 1, 1_000)];
    let mut data = Vec::new();
    for c in &whole {
        data.extend(serde_json::to_vec(c).expect("encodes"));
        data.push(b'\n');
    }
    let torn = serde_json::to_vec(&answered("acme", T + 2, 1_000)).expect("encodes");
    data.extend_from_slice(&torn[..torn.len() / 2]);
    let segment = PathBuf::from(&config.spool_dir).join("1795507200000-0badf00d.jsonl");
    fs::write(&segment, &data).expect("write segment");
    // And a segment that never got a byte.
    fs::write(
        PathBuf::from(&config.spool_dir).join("1795507200001-00000001.jsonl"),
        b"",
    )
    .expect("write empty");

    let (service, writer) = CdrService::start(config.clone(), "node-a").expect("starts");
    writer.ship_now().await.expect("shipped");
    let stats = service.stats();
    assert_eq!(stats.segments_recovered, 2, "{stats:?}");
    assert_eq!(stats.torn_lines, 1, "{stats:?}");
    let found = listed(&config, "acme");
    let mut ids: Vec<&str> = found.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    let mut want: Vec<&str> = whole.iter().map(|c| c.id.as_str()).collect();
    want.sort_unstable();
    assert_eq!(ids, want);
    assert!(spool_files(&config).is_empty());
    service.shutdown().await;
}

#[test]
fn recovery_cuts_only_after_the_last_newline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("1-ab.jsonl");
    fs::write(&path, b"{\"a\":1}\n{\"b\":2}\n{\"c\":").expect("write");
    fs::write(dir.path().join("not-a-segment.txt"), b"x").expect("write");
    let found = spool::recover(dir.path()).expect("recovers");
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].bytes, found[0].torn_bytes), (16, 5));
    assert_eq!(fs::read(&path).expect("read"), b"{\"a\":1}\n{\"b\":2}\n");
    // Recovering again changes nothing.
    let again = spool::recover(dir.path()).expect("recovers");
    assert_eq!((again[0].bytes, again[0].torn_bytes), (16, 0));
}

#[tokio::test]
async fn a_store_that_is_down_keeps_records_in_the_spool_until_it_is_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = CdrConfig {
        segment_max_ms: 3_600_000,
        ..config(dir.path())
    };
    let (service, writer) = CdrService::start(config.clone(), "node-a").expect("starts");
    // The store's tenant folder cannot be created: a file is in its place.
    let blocker = PathBuf::from(&config.dir).join("acme");
    fs::write(&blocker, b"in the way").expect("block");
    for i in 0..10 {
        writer
            .write_durable(answered("acme", T + i, 1_000))
            .await
            .expect("durable in the spool");
    }
    let e = writer.ship_now().await.expect_err("the store refuses");
    assert!(e.to_string().contains("could not be shipped"), "{e}");
    let stats = service.stats();
    assert!(stats.ship_errors >= 1, "{stats:?}");
    assert!(stats.spool_bytes > 0, "{stats:?}");
    assert_eq!(spool_files(&config).len(), 1, "kept in the spool");

    // Stopped while the store is still down: the segment stays for the next start.
    service.shutdown().await;
    assert_eq!(spool_files(&config).len(), 1);

    // The store is back; the next start ships what the last one could not.
    fs::remove_file(&blocker).expect("unblock");
    let (service, writer) = CdrService::start(config.clone(), "node-a").expect("restarts");
    assert_eq!(service.stats().segments_recovered, 1);
    writer.ship_now().await.expect("shipped");
    assert_eq!(listed(&config, "acme").len(), 10);
    assert!(spool_files(&config).is_empty());
    service.shutdown().await;
}

#[tokio::test]
async fn a_store_back_while_running_gets_the_records_without_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = CdrConfig {
        segment_max_ms: 3_600_000,
        ..config(dir.path())
    };
    let (service, writer) = CdrService::start(config.clone(), "node-a").expect("starts");
    let blocker = PathBuf::from(&config.dir).join("acme");
    fs::write(&blocker, b"in the way").expect("block");
    writer
        .write_durable(answered("acme", T, 1_000))
        .await
        .expect("durable");
    writer.ship_now().await.expect_err("the store refuses");
    fs::remove_file(&blocker).expect("unblock");
    writer
        .write_durable(answered("acme", T + 1, 1_000))
        .await
        .expect("durable");
    writer.ship_now().await.expect("shipped");
    assert_eq!(listed(&config, "acme").len(), 2);
    service.shutdown().await;
}

#[tokio::test]
async fn one_spool_serves_one_service_at_a_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, _writer) = CdrService::start(config(dir.path()), "node-a").expect("starts");
    let e = CdrService::start(config(dir.path()), "node-b").expect_err("spool in use");
    assert!(e.to_string().contains("in use by another process"), "{e}");
    first.shutdown().await;
    let (again, _writer) = CdrService::start(config(dir.path()), "node-b").expect("free again");
    again.shutdown().await;
}

#[tokio::test]
async fn a_bad_node_name_or_spool_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = CdrService::start(config(dir.path()), "../node").expect_err("bad name");
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let file = dir.path().join("file");
    fs::write(&file, b"x").expect("write");
    let config = CdrConfig {
        spool_dir: file.join("spool").display().to_string(),
        ..config(dir.path())
    };
    let e = CdrService::start(config, "node-a").expect_err("spool under a file");
    assert!(e.to_string().contains("cannot create the CDR spool"), "{e}");
}

#[tokio::test]
async fn written_cdrs_are_counted_per_tenant() {
    let handle = crate::telemetry::install_metrics_recorder().expect("recorder");
    let dir = tempfile::tempdir().expect("tempdir");
    let (service, writer) = CdrService::start(config(dir.path()), "node-a").expect("starts");
    let tenant = "metrics-cdr-test";
    crate::cdr::metrics::call_attempt(tenant);
    crate::cdr::metrics::call_attempt(tenant);
    crate::cdr::metrics::call_attempt(tenant);
    crate::cdr::metrics::call_rejected(tenant, "quota");
    crate::cdr::metrics::call_started(tenant);
    crate::cdr::metrics::call_started(tenant);
    crate::cdr::metrics::call_ended(tenant);
    writer
        .write_durable(answered(tenant, T, 61_500))
        .await
        .expect("durable");
    let mut unanswered = answered(tenant, T, 0);
    unanswered.answer_ms = None;
    unanswered.disposition = Disposition::NoAnswer;
    unanswered.finish(T + 30_000);
    writer.write_durable(unanswered).await.expect("durable");
    crate::cdr::metrics::call_attempt("Not A Tenant!");
    let text = handle.render();
    for line in [
        format!("tongdai_call_attempts_total{{tenant=\"{tenant}\"}} 3"),
        format!("tongdai_calls_rejected_total{{tenant=\"{tenant}\",reason=\"quota\"}} 1"),
        format!("tongdai_calls_active{{tenant=\"{tenant}\"}} 1"),
        format!("tongdai_calls_answered_total{{tenant=\"{tenant}\"}} 1"),
        format!("tongdai_call_billable_seconds_total{{tenant=\"{tenant}\"}} 62"),
        "tongdai_call_attempts_total{tenant=\"invalid\"}".to_owned(),
    ] {
        assert!(text.contains(&line), "{line} missing from:\n{text}");
    }
    assert!(
        text.contains("tongdai_call_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("tongdai_cdrs_written_total"), "{text}");
    assert!(text.contains("tongdai_cdr_spool_bytes"), "{text}");
    service.shutdown().await;
}
