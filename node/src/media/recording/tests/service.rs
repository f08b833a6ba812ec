//! The recorder service end to end: commands through its channels, files through the spool
//! into a local store, crash leftovers shipped at start, failed shipping retried. Every
//! wait is for a condition with a deadline.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::super::service::{Command, RecorderHandle, RecorderService, SendError};
use super::super::spool::SpoolWriter;
use super::super::store::RecordingStore;
use super::super::{RecordedPacket, RecordingId, RecordingMeta, RecordingSummary};
use super::{PTIME, Side, encode, frames, goertzel, ms, packet, sine};
use crate::media::g711::Law;
use crate::media::wav;

const WAIT: Duration = Duration::from_secs(20);

struct Dirs {
    _root: tempfile::TempDir,
    spool: PathBuf,
    store: PathBuf,
}

fn dirs() -> Dirs {
    let root = tempfile::tempdir().unwrap();
    Dirs {
        spool: root.path().join("spool"),
        store: root.path().join("store"),
        _root: root,
    }
}

fn service(d: &Dirs) -> RecorderService {
    let mut s = RecorderService::new(
        &d.spool,
        RecordingStore::Local {
            dir: d.store.clone(),
        },
    );
    s.flush_interval = Duration::from_millis(20);
    s.retry_initial = Duration::from_millis(10);
    s.retry_max = Duration::from_millis(50);
    s
}

/// Two seconds of a call: 440 Hz from the caller (μ-law), 1000 Hz from the callee
/// (A-law), as batches of packets for recording `id`, arriving from `at` on.
pub(super) fn call_batches(
    handle: &RecorderHandle,
    id: RecordingId,
    at: Instant,
) -> Vec<Vec<RecordedPacket>> {
    let caller = sine(440.0, 8000.0, 0, 100 * PTIME);
    let callee = sine(1000.0, 8000.0, 0, 100 * PTIME);
    let mut batches = Vec::new();
    for chunk in 0..10 {
        // Batches reuse vectors the recorder gave back, when it has any.
        let mut batch = handle.recycled().unwrap_or_default();
        for k in chunk * 10..chunk * 10 + 10 {
            let arrival = at + ms(20 * k as u64);
            let span = k * PTIME..(k + 1) * PTIME;
            for (side, ssrc, pt, law, audio) in [
                (Side::Caller, 11, 0, Law::Ulaw, &caller),
                (Side::Callee, 22, 8, Law::Alaw, &callee),
            ] {
                let mut p = packet(
                    side,
                    arrival,
                    ssrc,
                    k as u16,
                    (PTIME * k) as u32,
                    pt,
                    &encode(law, &audio[span.clone()]),
                );
                p.recording = id;
                batch.push(p);
            }
        }
        batches.push(batch);
    }
    batches
}

fn stored_files(store: &Path, summary: &RecordingSummary) -> (Vec<u8>, RecordingSummary) {
    let folder = store
        .join(&summary.tenant)
        .join(super::super::store::utc_day(summary.started_unix_ms));
    let wav = fs::read(folder.join(format!("{}.wav", summary.id))).unwrap();
    let json = fs::read(folder.join(format!("{}.json", summary.id))).unwrap();
    (wav, serde_json::from_slice(&json).unwrap())
}

fn only_recording(handle: &RecorderHandle, tenant: &str) -> RecordingSummary {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut list = rt.block_on(handle.store().list(tenant)).unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    list.remove(0)
}

#[test]
fn a_call_is_recorded_shipped_and_its_batches_come_back() {
    let d = dirs();
    let handle = service(&d).start().unwrap();
    let id = RecordingId(7);
    let meta = RecordingMeta::new("acme", "call-7@example.com", 1_700_000_000_000);
    // The packets' arrival times run ahead of the wall clock so the periodic drain never
    // overtakes them, whatever the scheduling.
    let at = Instant::now() + Duration::from_secs(1);
    handle
        .send(Command::Start {
            id,
            meta: meta.clone(),
            at,
        })
        .unwrap();
    let batches = call_batches(&handle, id, at);
    for batch in batches {
        let mut command = Command::Packets(batch);
        // A full queue hands the batch back; offer it again once the recorder caught up.
        loop {
            match handle.try_send(command) {
                Ok(()) => break,
                Err(SendError::Full(c)) => {
                    command = c;
                    let queued = handle.stats().packets_written;
                    handle.wait_for(Instant::now() + WAIT, |s| s.packets_written > queued);
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
    assert!(handle.wait_for(Instant::now() + WAIT, |s| s.packets_written == 200));
    assert!(
        handle
            .recycled()
            .is_some_and(|v| v.is_empty() && v.capacity() >= 20)
    );
    assert_eq!(handle.stats().active, 1);
    handle.send(Command::Stop { id }).unwrap();
    assert!(
        handle.wait_for(Instant::now() + WAIT, |s| s.shipped == 1),
        "{:?}",
        handle.stats()
    );
    let stats = handle.stats();
    assert_eq!(
        (
            stats.active,
            stats.started,
            stats.finished,
            stats.ship_pending
        ),
        (0, 1, 1, 0)
    );
    assert_eq!(
        stats.packets_late + stats.packets_duplicate + stats.packets_unknown,
        0
    );

    let summary = only_recording(&handle, "acme");
    assert_eq!(summary.id, meta.id);
    assert!(summary.complete);
    let (file, json) = stored_files(&d.store, &summary);
    assert_eq!(json, summary);
    assert_eq!(super::sha256_hex(&file), summary.sha256);
    let parsed = wav::parse(&file).unwrap();
    let audio = frames(parsed.data(&file));
    // Two seconds of call, plus however long the test took to stop it after `at`.
    assert!(audio.len() >= 16_000, "{}", audio.len());
    let start = 0;
    let left: Vec<i16> = audio[start..start + 16_000].iter().map(|f| f.0).collect();
    let right: Vec<i16> = audio[start..start + 16_000].iter().map(|f| f.1).collect();
    assert!(goertzel(&left, 440.0) > 100.0 * goertzel(&left, 1000.0));
    assert!(goertzel(&right, 1000.0) > 100.0 * goertzel(&right, 440.0));
    assert!(fs::read_dir(&d.spool).unwrap().next().is_none());

    let report = handle.shutdown(Instant::now() + WAIT);
    assert!(
        report.all_shipped && report.remaining.is_empty(),
        "{report:?}"
    );
    assert!(matches!(
        handle.try_send(Command::Stop { id }),
        Err(SendError::Closed(_))
    ));
}

#[test]
fn pause_and_resume_through_the_service_silence_the_span() {
    let d = dirs();
    let handle = service(&d).start().unwrap();
    let id = RecordingId(1);
    let at = Instant::now() + Duration::from_secs(1);
    let meta = RecordingMeta::new("acme", "c", 1_700_000_000_000);
    handle.send(Command::Start { id, meta, at }).unwrap();
    let batches = call_batches(&handle, id, at);
    handle
        .send(Command::Pause {
            id,
            at: at + ms(500),
        })
        .unwrap();
    handle
        .send(Command::Resume {
            id,
            at: at + ms(1500),
        })
        .unwrap();
    for batch in batches {
        handle.send(Command::Packets(batch)).unwrap();
    }
    handle.send(Command::Stop { id }).unwrap();
    assert!(handle.wait_for(Instant::now() + WAIT, |s| s.shipped == 1));
    let summary = only_recording(&handle, "acme");
    let (file, _) = stored_files(&d.store, &summary);
    let audio = frames(wav::parse(&file).unwrap().data(&file));
    assert!(audio[4000..12_000].iter().all(|&f| f == (0, 0)));
    assert!(
        audio[..4000]
            .iter()
            .filter(|f| f.0 != 0 && f.1 != 0)
            .count()
            > 3000
    );
    assert!(
        audio[12_000..16_000]
            .iter()
            .filter(|f| f.0 != 0 && f.1 != 0)
            .count()
            > 3000
    );
    handle.shutdown(Instant::now() + WAIT);
}

#[test]
fn shutdown_finishes_and_ships_open_recordings() {
    let d = dirs();
    let handle = service(&d).start().unwrap();
    let at = Instant::now() + Duration::from_secs(1);
    for (n, tenant) in [(1, "acme"), (2, "globex")] {
        let id = RecordingId(n);
        let meta = RecordingMeta::new(tenant, "c", 1_700_000_000_000);
        handle.send(Command::Start { id, meta, at }).unwrap();
        for batch in call_batches(&handle, id, at) {
            handle.send(Command::Packets(batch)).unwrap();
        }
    }
    // No Stop: the node is shutting down with calls up.
    let report = handle.shutdown(Instant::now() + WAIT);
    assert!(report.all_shipped, "{report:?}");
    assert!(report.remaining.is_empty());
    assert_eq!(report.stats.shipped, 2);
    for tenant in ["acme", "globex"] {
        let summary = only_recording(&handle, tenant);
        assert!(summary.complete);
        assert!(summary.duration_ms >= 2000, "{summary:?}");
    }
}

#[test]
fn a_restart_repairs_and_ships_what_a_killed_process_left() {
    let d = dirs();
    // The previous process: one recording in progress when it was killed, with its last
    // write cut mid-frame, and one finished but not yet shipped.
    let mut open = SpoolWriter::create(
        &d.spool,
        RecordingMeta::new("acme", "killed", 1_700_000_000_000),
    )
    .unwrap();
    open.append(&vec![0x11; 4 * 4000]).unwrap();
    open.flush().unwrap();
    let open_id = open.meta().id.clone();
    std::mem::forget(open);
    let (wav_path, _) = super::super::spool::spool_paths(&d.spool, &open_id);
    let len = fs::metadata(&wav_path).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&wav_path)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let mut done = SpoolWriter::create(
        &d.spool,
        RecordingMeta::new("acme", "done", 1_700_000_000_001),
    )
    .unwrap();
    done.append(&[0; 64]).unwrap();
    let done = done.finish().unwrap();

    let handle = service(&d).start().unwrap();
    assert!(handle.wait_for(Instant::now() + WAIT, |s| s.shipped == 2));
    assert_eq!(handle.stats().recovered, 2);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let repaired = rt
        .block_on(handle.store().summary("acme", &open_id))
        .unwrap()
        .unwrap();
    assert!(repaired.repaired && !repaired.complete);
    assert_eq!(repaired.duration_ms, 3999 * 1000 / 8000);
    let (file, _) = stored_files(&d.store, &repaired);
    assert_eq!(wav::parse(&file).unwrap().data_len, 3999 * 4);
    assert_eq!(
        rt.block_on(handle.store().summary("acme", &done.summary.id))
            .unwrap(),
        Some(done.summary)
    );
    assert!(handle.shutdown(Instant::now() + WAIT).all_shipped);
}

#[test]
fn failed_shipping_is_retried_until_the_store_takes_it() {
    let d = dirs();
    // The store's directory is a file: every ship fails until an operator fixes it.
    fs::create_dir_all(d.store.parent().unwrap()).unwrap();
    fs::write(&d.store, b"not a directory").unwrap();
    let handle = service(&d).start().unwrap();
    let id = RecordingId(3);
    // Stopped before its timeline starts: an empty recording.
    let at = Instant::now() + Duration::from_secs(5);
    let meta = RecordingMeta::new("acme", "c", 1_700_000_000_000);
    handle.send(Command::Start { id, meta, at }).unwrap();
    handle.send(Command::Stop { id }).unwrap();
    assert!(handle.wait_for(Instant::now() + WAIT, |s| s.ship_failures >= 2));
    assert_eq!(handle.stats().shipped, 0);
    assert_eq!(handle.stats().ship_pending, 1);
    fs::remove_file(&d.store).unwrap();
    assert!(handle.wait_for(Instant::now() + WAIT, |s| s.shipped == 1));
    assert_eq!(only_recording(&handle, "acme").duration_ms, 0);
    assert!(handle.shutdown(Instant::now() + WAIT).all_shipped);
}

#[test]
fn a_shutdown_deadline_leaves_unshipped_recordings_in_the_spool() {
    let d = dirs();
    fs::create_dir_all(d.store.parent().unwrap()).unwrap();
    fs::write(&d.store, b"not a directory").unwrap();
    let handle = service(&d).start().unwrap();
    let id = RecordingId(4);
    let meta = RecordingMeta::new("acme", "c", 1_700_000_000_000);
    let rec_id = meta.id.clone();
    handle
        .send(Command::Start {
            id,
            meta,
            at: Instant::now(),
        })
        .unwrap();
    let report = handle.shutdown(Instant::now() + Duration::from_millis(300));
    assert!(!report.all_shipped);
    assert_eq!(report.stats.finished, 1);
    let names: Vec<String> = report
        .remaining
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, [format!("{rec_id}.json"), format!("{rec_id}.wav")]);

    // The next start (store fixed) ships it.
    fs::remove_file(&d.store).unwrap();
    let handle = service(&d).start().unwrap();
    assert!(handle.wait_for(Instant::now() + WAIT, |s| s.shipped == 1));
    assert!(only_recording(&handle, "acme").complete);
    assert!(handle.shutdown(Instant::now() + WAIT).all_shipped);
}

#[test]
fn starts_that_cannot_be_honoured_are_counted_not_fatal() {
    let d = dirs();
    let handle = service(&d).start().unwrap();
    let at = Instant::now();
    let mut bad = RecordingMeta::new("acme", "c", 1);
    bad.id = "../escape".to_owned();
    handle
        .send(Command::Start {
            id: RecordingId(1),
            meta: bad,
            at,
        })
        .unwrap();
    let good = RecordingMeta::new("acme", "c", 1);
    handle
        .send(Command::Start {
            id: RecordingId(2),
            meta: good.clone(),
            at,
        })
        .unwrap();
    handle
        .send(Command::Start {
            id: RecordingId(2),
            meta: good,
            at,
        })
        .unwrap();
    let mut stray = handle.recycled().unwrap_or_default();
    stray.push(packet(Side::Caller, at, 1, 1, 1, 0, &[0xFF; 160]));
    stray[0].recording = RecordingId(99);
    handle.send(Command::Packets(stray)).unwrap();
    assert!(
        handle.wait_for(Instant::now() + WAIT, |s| s.start_failures == 2
            && s.packets_unknown == 1
            && s.active == 1)
    );
    assert!(handle.shutdown(Instant::now() + WAIT).all_shipped);
}
