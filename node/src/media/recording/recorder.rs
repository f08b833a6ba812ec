//! The recorder thread: owns every open recording (its aligner and spool writer), takes
//! the relay workers' commands in order, and every flush interval drains the aligners
//! into the spool files. Stopped recordings go to the shipper; the thread itself never
//! waits on the store.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender};
use std::time::{Duration, Instant};

use super::aligner::{PushOutcome, StereoAligner};
use super::service::{Command, Shared, bump};
use super::shipper::ToShipper;
use super::spool::SpoolWriter;
use super::{RecordedPacket, RecordingId};

/// One open recording.
#[derive(Debug)]
struct Open {
    aligner: StereoAligner,
    writer: SpoolWriter,
    /// A write already failed (logged once, not per flush).
    write_failed: bool,
}

impl Open {
    fn write(&mut self, pcm: &[u8], flush: bool) {
        let result = self
            .writer
            .append(pcm)
            .and_then(|()| if flush { self.writer.flush() } else { Ok(()) });
        if let Err(e) = result
            && !self.write_failed
        {
            self.write_failed = true;
            tracing::error!(recording = %self.writer.meta().id, error = %e, "cannot write a recording to the spool");
        }
    }
}

/// The recorder thread's state.
pub(super) struct Recorder {
    spool: PathBuf,
    window: Duration,
    flush_interval: Duration,
    shared: Arc<Shared>,
    to_shipper: Sender<ToShipper>,
    recycle: SyncSender<Vec<RecordedPacket>>,
    open: HashMap<RecordingId, Open>,
    /// Reused buffer for drained frames.
    pcm: Vec<u8>,
}

impl Recorder {
    pub(super) fn new(
        spool: PathBuf,
        window: Duration,
        flush_interval: Duration,
        shared: Arc<Shared>,
        to_shipper: Sender<ToShipper>,
        recycle: SyncSender<Vec<RecordedPacket>>,
    ) -> Recorder {
        Recorder {
            spool,
            window,
            flush_interval,
            shared,
            to_shipper,
            recycle,
            open: HashMap::new(),
            pcm: Vec::new(),
        }
    }

    pub(super) fn run(mut self, commands: Receiver<Command>) {
        let mut next_flush = Instant::now() + self.flush_interval;
        loop {
            let timeout = next_flush.saturating_duration_since(Instant::now());
            let command = match commands.recv_timeout(timeout) {
                Ok(command) => Some(command),
                Err(RecvTimeoutError::Timeout) => None,
                // Every handle is gone: nobody can stop recordings any more, so end them.
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let now = Instant::now();
            match command {
                Some(Command::Shutdown) => break,
                Some(command) => self.handle(command, now),
                None => {}
            }
            if now >= next_flush {
                self.flush_all(now);
                next_flush = now + self.flush_interval;
            }
            self.shared.notify();
        }
        let now = Instant::now();
        let ids: Vec<RecordingId> = self.open.keys().copied().collect();
        for id in ids {
            self.stop(id, now);
        }
        self.shared.update(|p| p.recorder_running = false);
    }

    fn handle(&mut self, command: Command, now: Instant) {
        let counters = &self.shared.counters;
        match command {
            Command::Start { id, meta, at } => {
                if self.open.contains_key(&id) {
                    bump(&counters.start_failures);
                    tracing::error!(?id, recording = %meta.id, "recording id already open; start refused");
                    return;
                }
                match SpoolWriter::create(&self.spool, meta) {
                    Ok(writer) => {
                        let aligner = StereoAligner::with_window(at, self.window);
                        self.open.insert(
                            id,
                            Open {
                                aligner,
                                writer,
                                write_failed: false,
                            },
                        );
                        bump(&counters.started);
                        counters
                            .active
                            .store(self.open.len() as u64, Ordering::Relaxed);
                    }
                    Err(e) => {
                        bump(&counters.start_failures);
                        tracing::error!(?id, error = %e, "cannot start a recording");
                    }
                }
            }
            Command::Packets(mut batch) => {
                for packet in &batch {
                    let Some(open) = self.open.get_mut(&packet.recording) else {
                        bump(&counters.packets_unknown);
                        continue;
                    };
                    bump(match open.aligner.push(packet) {
                        PushOutcome::Written => &counters.packets_written,
                        PushOutcome::Late => &counters.packets_late,
                        PushOutcome::Duplicate => &counters.packets_duplicate,
                        PushOutcome::NotAudio => &counters.packets_not_audio,
                    });
                }
                batch.clear();
                // A full return queue means the workers have spares; this one is freed.
                let _ = self.recycle.try_send(batch);
            }
            Command::Pause { id, at } => match self.open.get_mut(&id) {
                Some(open) => open.aligner.pause(at),
                None => tracing::debug!(?id, "pause for a recording that is not open"),
            },
            Command::Resume { id, at } => match self.open.get_mut(&id) {
                Some(open) => open.aligner.resume(at),
                None => tracing::debug!(?id, "resume for a recording that is not open"),
            },
            Command::Stop { id } => self.stop(id, now),
            Command::Shutdown => {}
        }
    }

    fn flush_all(&mut self, now: Instant) {
        for open in self.open.values_mut() {
            self.pcm.clear();
            open.aligner.drain(now, &mut self.pcm);
            open.write(&self.pcm, true);
        }
    }

    /// Writes the rest of a recording and hands it to the shipper to finish and ship.
    fn stop(&mut self, id: RecordingId, now: Instant) {
        let Some(mut open) = self.open.remove(&id) else {
            tracing::debug!(?id, "stop for a recording that is not open");
            return;
        };
        self.shared
            .counters
            .active
            .store(self.open.len() as u64, Ordering::Relaxed);
        self.pcm.clear();
        open.aligner.finish(now, &mut self.pcm);
        open.write(&self.pcm, false);
        self.shared.update(|p| p.ship_pending += 1);
        if self
            .to_shipper
            .send(ToShipper::Finish(open.writer))
            .is_err()
        {
            // The shipper is gone (a shutdown gave up on it). The files stay in the spool
            // and the next start repairs and ships them.
            self.shared.update(|p| p.ship_pending -= 1);
        }
    }
}
