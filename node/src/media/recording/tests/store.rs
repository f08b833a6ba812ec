//! The stores: a local directory on real files, and the object-store path against
//! `object_store`'s in-memory store (the same code the S3 test drives over HTTP).

use std::fs;
use std::path::Path;
use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use super::super::spool::{FinishedRecording, SpoolWriter};
use super::super::store::{RecordingStore, S3_PART_SIZE, move_file, utc_day};
use super::super::{RecordingMeta, StoreError};
use super::sha256_hex;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A finished recording of `frames` frames in `spool`.
fn finished(spool: &Path, tenant: &str, started_unix_ms: u64, frames: usize) -> FinishedRecording {
    let meta = RecordingMeta::new(tenant, "call-1@example.com", started_unix_ms);
    let mut writer = SpoolWriter::create(spool, meta).unwrap();
    let pcm: Vec<u8> = (0..frames * 4).map(|i| (i * 7 % 251) as u8).collect();
    writer.append(&pcm).unwrap();
    writer.finish().unwrap()
}

fn spool_is_empty(spool: &Path) -> bool {
    fs::read_dir(spool).unwrap().next().is_none()
}

#[test]
fn utc_days_are_calendar_dates() {
    assert_eq!(utc_day(0), "1970-01-01");
    assert_eq!(utc_day(86_399_999), "1970-01-01");
    assert_eq!(utc_day(951_782_400_000), "2000-02-29");
    assert_eq!(utc_day(1_700_000_000_000), "2023-11-14");
    assert_eq!(utc_day(4_107_542_400_000), "2100-03-01");
}

#[test]
fn local_ship_moves_both_files_into_the_tenant_day_folder() {
    let spool = tempfile::tempdir().unwrap();
    let store_dir = tempfile::tempdir().unwrap();
    let store = RecordingStore::Local {
        dir: store_dir.path().to_owned(),
    };
    let rec = finished(spool.path(), "acme", 1_700_000_000_000, 8000);
    let id = rec.summary.id.clone();
    let rt = runtime();
    let stored = rt.block_on(store.ship(&rec)).unwrap();

    let folder = store_dir.path().join("acme").join("2023-11-14");
    let wav = fs::read(folder.join(format!("{id}.wav"))).unwrap();
    assert_eq!(sha256_hex(&wav), rec.summary.sha256);
    assert_eq!(wav.len() as u64, rec.summary.bytes);
    let json: super::super::RecordingSummary =
        serde_json::from_slice(&fs::read(folder.join(format!("{id}.json"))).unwrap()).unwrap();
    assert_eq!(json, rec.summary);
    assert_eq!(
        stored.location,
        folder.join(format!("{id}.wav")).display().to_string()
    );
    assert!(spool_is_empty(spool.path()));

    // Lookups belong to the tenant.
    assert_eq!(
        rt.block_on(store.list("acme")).unwrap(),
        vec![rec.summary.clone()]
    );
    assert!(rt.block_on(store.list("globex")).unwrap().is_empty());
    assert_eq!(
        rt.block_on(store.summary("acme", &id)).unwrap(),
        Some(rec.summary.clone())
    );
    assert_eq!(rt.block_on(store.summary("globex", &id)).unwrap(), None);
    assert_eq!(rt.block_on(store.summary("acme", "../acme")).unwrap(), None);
    assert_eq!(rt.block_on(store.audio("acme", &id)).unwrap().unwrap(), wav);
    assert_eq!(rt.block_on(store.audio("globex", &id)).unwrap(), None);
    assert!(!rt.block_on(store.delete("globex", &id)).unwrap());
    assert!(rt.block_on(store.delete("acme", &id)).unwrap());
    assert!(rt.block_on(store.list("acme")).unwrap().is_empty());
    assert!(!rt.block_on(store.delete("acme", &id)).unwrap());
}

#[test]
fn shipping_again_after_a_crash_part_way_finishes_the_job() {
    let spool = tempfile::tempdir().unwrap();
    let store_dir = tempfile::tempdir().unwrap();
    let store = RecordingStore::Local {
        dir: store_dir.path().to_owned(),
    };
    let rec = finished(spool.path(), "acme", 1_700_000_000_000, 100);
    // The audio was moved, then the process died before the metadata followed.
    let folder = store_dir.path().join("acme/2023-11-14");
    fs::create_dir_all(&folder).unwrap();
    fs::rename(&rec.wav, folder.join(format!("{}.wav", rec.summary.id))).unwrap();
    let rt = runtime();
    rt.block_on(store.ship(&rec)).unwrap();
    assert!(spool_is_empty(spool.path()));
    assert_eq!(
        rt.block_on(store.list("acme")).unwrap(),
        vec![rec.summary.clone()]
    );

    // Audio gone from both places: an error that says so, not a silent success.
    let rec = finished(spool.path(), "acme", 1_700_000_000_000, 100);
    fs::remove_file(&rec.wav).unwrap();
    let err = rt.block_on(store.ship(&rec)).unwrap_err();
    assert!(matches!(err, StoreError::AudioMissing { .. }), "{err}");
}

#[test]
fn a_move_across_filesystems_copies_syncs_and_removes() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("a.wav");
    let dst = dir.path().join("b.wav");
    fs::write(&src, b"RIFF....").unwrap();
    move_file(&src, &dst, true).unwrap();
    assert!(!src.exists());
    assert_eq!(fs::read(&dst).unwrap(), b"RIFF....");
    assert!(!dir.path().join("b.wav.tmp").exists());
}

#[test]
fn object_store_ship_uploads_verifies_and_only_then_empties_the_spool() {
    let spool = tempfile::tempdir().unwrap();
    let memory = Arc::new(InMemory::new());
    let store = RecordingStore::S3 {
        store: memory.clone(),
        bucket: "recordings".to_owned(),
        prefix: "calls".to_owned(),
    };
    let rt = runtime();
    let small = finished(spool.path(), "acme", 1_700_000_000_000, 800);
    // Over one part: goes up as a multipart upload.
    let large = finished(
        spool.path(),
        "acme",
        1_700_086_400_000,
        S3_PART_SIZE / 4 + 1000,
    );
    for rec in [&small, &large] {
        let stored = rt.block_on(store.ship(rec)).unwrap();
        let key = format!(
            "calls/acme/{}/{}.wav",
            utc_day(rec.summary.started_unix_ms),
            rec.summary.id
        );
        assert_eq!(stored.location, format!("s3://recordings/{key}"));
        let bytes = rt
            .block_on(async { memory.get(&ObjectPath::from(key)).await?.bytes().await })
            .unwrap();
        assert_eq!(sha256_hex(&bytes), rec.summary.sha256);
    }
    assert!(spool_is_empty(spool.path()));
    let listed = rt.block_on(store.list("acme")).unwrap();
    assert_eq!(listed, vec![small.summary.clone(), large.summary.clone()]);
    assert_eq!(
        rt.block_on(store.summary("acme", &large.summary.id))
            .unwrap(),
        Some(large.summary.clone())
    );
    assert_eq!(
        rt.block_on(store.summary("globex", &large.summary.id))
            .unwrap(),
        None
    );
    let audio = rt
        .block_on(store.audio("acme", &small.summary.id))
        .unwrap()
        .unwrap();
    assert_eq!(sha256_hex(&audio), small.summary.sha256);
    assert!(
        rt.block_on(store.delete("acme", &small.summary.id))
            .unwrap()
    );
    assert_eq!(
        rt.block_on(store.list("acme")).unwrap(),
        vec![large.summary.clone()]
    );
    let left: Vec<_> = rt
        .block_on(memory.list_with_delimiter(Some(&ObjectPath::from("calls/acme/2023-11-14"))))
        .unwrap()
        .objects;
    assert!(left.is_empty(), "{left:?}");
}
