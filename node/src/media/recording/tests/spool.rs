//! The spool on real files: a finished recording reads back as the WAV it should be, and a
//! writer that died mid-write (as under `kill -9`) is repaired from what reached the disk.

use std::fs::{self, OpenOptions};
use std::time::Instant;

use super::super::spool::{RecordingSummary, SpoolWriter, WAV_FORMAT, recover_spool, spool_paths};
use super::super::{FORMAT, RecordingMeta, StereoAligner};
use super::{PTIME, Side, encode, ms, packet, sha256_hex, sine};
use crate::media::g711::Law;
use crate::media::wav::{self, HEADER_LEN};

fn meta(id: &str) -> RecordingMeta {
    RecordingMeta {
        id: id.to_owned(),
        tenant: "acme".to_owned(),
        call_id: "a84b4c76e66710@pc33".to_owned(),
        started_unix_ms: 1_700_000_000_000,
    }
}

/// One second of a call (440 Hz caller, silent callee) as the aligner hands it out.
fn one_second_of_audio() -> Vec<u8> {
    let t0 = Instant::now();
    let mut aligner = StereoAligner::new(t0);
    let tone = sine(440.0, 6000.0, 0, 8000);
    for (k, chunk) in tone.chunks(PTIME).enumerate() {
        aligner.push(&packet(
            Side::Caller,
            t0 + ms(20 * k as u64),
            9,
            k as u16,
            (PTIME * k) as u32,
            0,
            &encode(Law::Ulaw, chunk),
        ));
    }
    let mut pcm = Vec::new();
    aligner.finish(t0 + ms(1000), &mut pcm);
    assert_eq!(pcm.len(), 8000 * 4);
    pcm
}

#[test]
fn a_finished_recording_is_a_stereo_wav_with_matching_metadata() {
    let spool = tempfile::tempdir().unwrap();
    let pcm = one_second_of_audio();
    let mut writer = SpoolWriter::create(spool.path(), meta("rec-1")).unwrap();
    let (wav_path, json_path) = spool_paths(spool.path(), "rec-1");
    // Both exist from the start, so a crash leaves something to repair.
    assert!(wav_path.exists() && json_path.exists());
    for chunk in pcm.chunks(1000) {
        writer.append(chunk).unwrap();
    }
    let finished = writer.finish().unwrap();

    let file = fs::read(&wav_path).unwrap();
    let parsed = wav::parse(&file).unwrap();
    assert_eq!(parsed.format, WAV_FORMAT);
    assert_eq!(parsed.data_offset, HEADER_LEN);
    assert_eq!(parsed.data(&file), &pcm[..]);

    let s = &finished.summary;
    assert_eq!(s.id, "rec-1");
    assert_eq!(s.tenant, "acme");
    assert_eq!(s.duration_ms, 1000);
    assert_eq!(s.bytes, file.len() as u64);
    assert_eq!(s.sha256, sha256_hex(&file));
    assert_eq!(s.format, FORMAT);
    assert!(s.complete && !s.repaired);
    let on_disk: RecordingSummary = serde_json::from_slice(&fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(&on_disk, s);
    assert_eq!(finished.wav, wav_path);
    assert_eq!(finished.json, json_path);
}

#[test]
fn ids_that_could_escape_the_spool_or_collide_are_refused() {
    let spool = tempfile::tempdir().unwrap();
    for bad in ["../etc/passwd", "a/b", "", ".hidden", "x y"] {
        assert!(
            SpoolWriter::create(spool.path(), meta(bad)).is_err(),
            "{bad:?} accepted"
        );
    }
    let mut m = meta("ok");
    m.tenant = "../other".to_owned();
    assert!(SpoolWriter::create(spool.path(), m).is_err());
    let _first = SpoolWriter::create(spool.path(), meta("twice")).unwrap();
    let again = SpoolWriter::create(spool.path(), meta("twice"));
    assert!(
        matches!(again, Err(super::super::SpoolError::Exists(_))),
        "{again:?}"
    );
}

#[test]
fn a_recording_cut_mid_frame_by_a_crash_is_repaired() {
    let spool = tempfile::tempdir().unwrap();
    let pcm = one_second_of_audio();
    let mut writer = SpoolWriter::create(spool.path(), meta("crashed")).unwrap();
    writer.append(&pcm).unwrap();
    writer.flush().unwrap();
    // The process dies: no finish, the header still says 0 bytes, and the last write
    // reached the disk only in part (2 bytes into frame 5000).
    std::mem::forget(writer);
    let (wav_path, json_path) = spool_paths(spool.path(), "crashed");
    let cut = HEADER_LEN as u64 + 5000 * 4 + 2;
    OpenOptions::new()
        .write(true)
        .open(&wav_path)
        .unwrap()
        .set_len(cut)
        .unwrap();
    assert_eq!(
        wav::parse(&fs::read(&wav_path).unwrap()).unwrap().data_len,
        0
    );
    // A metadata rewrite interrupted before its rename leaves a temporary file.
    fs::write(spool.path().join("crashed.json.tmp"), b"{\"half").unwrap();

    let recovered = recover_spool(spool.path()).unwrap();
    assert_eq!(recovered.len(), 1);
    let r = &recovered[0];
    let file = fs::read(&wav_path).unwrap();
    assert_eq!(file.len(), HEADER_LEN + 5000 * 4, "partial frame dropped");
    assert_eq!(
        &file[40..44],
        &(5000u32 * 4).to_le_bytes(),
        "header patched"
    );
    let parsed = wav::parse(&file).unwrap();
    assert_eq!(parsed.data(&file), &pcm[..5000 * 4]);
    assert_eq!(r.summary.duration_ms, 625);
    assert_eq!(r.summary.bytes, file.len() as u64);
    assert_eq!(r.summary.sha256, sha256_hex(&file));
    assert!(r.summary.repaired && !r.summary.complete);
    assert_eq!(r.summary.call_id, "a84b4c76e66710@pc33");
    let on_disk: RecordingSummary = serde_json::from_slice(&fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(on_disk, r.summary);
    assert!(!spool.path().join("crashed.json.tmp").exists());

    // Recovering again finds the same recording, now finished, unchanged.
    let again = recover_spool(spool.path()).unwrap();
    assert_eq!(again, recovered);
}

#[test]
fn recovery_also_finds_finished_unshipped_and_never_started_recordings() {
    let spool = tempfile::tempdir().unwrap();
    let mut writer = SpoolWriter::create(spool.path(), meta("done")).unwrap();
    writer.append(&[1, 0, 2, 0, 3, 0, 4, 0]).unwrap();
    let done = writer.finish().unwrap();

    // Died right after the metadata was written, before the audio file existed.
    let (wav_path, json_path) = spool_paths(spool.path(), "empty");
    drop(SpoolWriter::create(spool.path(), meta("empty")).unwrap());
    fs::remove_file(&wav_path).unwrap();
    assert!(json_path.exists());

    // Died inside the header itself.
    let (short_wav, _) = spool_paths(spool.path(), "short");
    drop(SpoolWriter::create(spool.path(), meta("short")).unwrap());
    OpenOptions::new()
        .write(true)
        .open(&short_wav)
        .unwrap()
        .set_len(20)
        .unwrap();

    // Files that are not recordings are left alone.
    fs::write(spool.path().join("notes.txt"), b"hello").unwrap();

    let recovered = recover_spool(spool.path()).unwrap();
    let ids: Vec<&str> = recovered.iter().map(|r| r.summary.id.as_str()).collect();
    assert_eq!(ids, ["done", "empty", "short"]);
    assert_eq!(recovered[0], done);
    for r in &recovered[1..] {
        assert!(r.summary.repaired);
        assert_eq!(r.summary.duration_ms, 0);
        let file = fs::read(&r.wav).unwrap();
        assert_eq!(file.len(), HEADER_LEN);
        assert_eq!(wav::parse(&file).unwrap().format, WAV_FORMAT);
    }
    assert!(spool.path().join("notes.txt").exists());
}

#[test]
fn recovering_a_missing_spool_finds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        recover_spool(&dir.path().join("absent"))
            .unwrap()
            .is_empty()
    );
}
