//! A running `tongdai media` (the media plane alone, driven over HTTP) and a small RTP
//! endpoint that plays a phone's part: it offers SDP, sends paced G.711 and keeps what
//! it receives.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tongdai_node::media::rtp::{RtpHeader, RtpPacket};

use crate::{ChildGuard, TempDir, free_tcp_port, http_request, tongdai_bin, wait_until};

/// A `tongdai media` process with its own port range, spool and recordings directories.
#[derive(Debug)]
pub struct MediaProc {
    pub control: SocketAddr,
    pub dir: TempDir,
    pub rtp_ports: (u16, u16),
    child: Option<ChildGuard>,
}

/// A port range for one media process: spread by pid and a counter, below the OS's
/// ephemeral range; the relay moves to the next pair if one is taken.
fn port_range() -> (u16, u16) {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let slot = (std::process::id() as u16)
        .wrapping_mul(13)
        .wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed))
        % 40;
    let min = 26_000 + slot * 150;
    (min, min + 149)
}

impl MediaProc {
    /// Starts `tongdai media` with `extra` arguments and waits until its API answers.
    pub fn start(extra: &[&str]) -> MediaProc {
        let dir = TempDir::new("media");
        let mut proc = MediaProc {
            control: SocketAddr::from(([127, 0, 0, 1], free_tcp_port())),
            rtp_ports: port_range(),
            dir,
            child: None,
        };
        proc.spawn(extra);
        proc
    }

    /// Starts the process again on the same ports and directories (after [`kill9`]).
    pub fn spawn(&mut self, extra: &[&str]) {
        let ports = format!("{}-{}", self.rtp_ports.0, self.rtp_ports.1);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("media.log"))
            .expect("log file");
        let child = Command::new(tongdai_bin())
            .args([
                "media",
                "--control",
                &self.control.to_string(),
                "--rtp-ports",
                &ports,
            ])
            .args(["--workers", "2"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tongdai media");
        self.child = Some(ChildGuard(child));
        let up = wait_until(Duration::from_secs(20), || {
            self.api("GET", "/v1/media/health", None).0 == 200
        });
        assert!(up, "tongdai media did not come up:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("media.log")).unwrap_or_default()
    }

    /// A sub-directory of the process's temp dir (created).
    pub fn path(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::create_dir_all(&p).expect("mkdir");
        p
    }

    /// Calls the control API; the body parsed as JSON (Null if empty or not JSON).
    pub fn api(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string());
        match http_request(self.control, method, path, "", body.as_deref()) {
            Some((code, text)) => (code, serde_json::from_str(&text).unwrap_or(Value::Null)),
            None => (0, Value::Null),
        }
    }

    /// `/metrics` text.
    pub fn metrics(&self) -> String {
        crate::http_get(self.control, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default()
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut guard) = self.child.take() {
            let _ = guard.0.kill();
            let _ = guard.0.wait();
        }
    }

    /// Sends SIGTERM and waits for the exit code.
    pub fn terminate(&mut self, within: Duration) -> Option<i32> {
        let guard = self.child.as_mut()?;
        let pid = guard.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = guard.0.try_wait() {
                self.child = None;
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

/// One end of a call: a UDP socket that speaks for a phone.
#[derive(Debug)]
pub struct Phone {
    pub socket: UdpSocket,
    seq: u16,
    timestamp: u32,
    ssrc: u32,
}

impl Phone {
    pub fn new(ssrc: u32) -> Phone {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.set_nonblocking(true).expect("nonblocking");
        Phone {
            socket,
            seq: 1000,
            timestamp: 160_000,
            ssrc,
        }
    }

    pub fn port(&self) -> u16 {
        self.socket.local_addr().expect("addr").port()
    }

    /// An SDP for this phone: PCMU (0), telephone-event (101), rtcp-mux.
    pub fn sdp(&self) -> String {
        format!(
            "v=0\r\no=phone 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
             a=fmtp:101 0-15\r\na=ptime:20\r\na=rtcp-mux\r\na=sendrecv\r\n",
            self.port()
        )
    }

    /// Sends one 20 ms G.711 packet with `payload_type` to `to`.
    pub fn send(&mut self, to: SocketAddr, payload_type: u8, payload: &[u8], marker: bool) {
        let mut buf = [0u8; 1500];
        let len = RtpHeader {
            marker,
            payload_type,
            sequence: self.seq,
            timestamp: self.timestamp,
            ssrc: self.ssrc,
            ..RtpHeader::default()
        }
        .write(payload, &mut buf)
        .expect("packet fits");
        let _ = self.socket.send_to(&buf[..len], to);
        self.seq = self.seq.wrapping_add(1);
    }

    /// Moves the media clock on by one 20 ms packet.
    pub fn tick(&mut self) {
        self.timestamp = self.timestamp.wrapping_add(160);
    }

    /// Everything waiting on the socket now.
    pub fn drain(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok((n, _)) = self.socket.recv_from(&mut buf) {
            out.push(buf[..n].to_vec());
        }
        out
    }
}

/// The relay's address in an SDP it returned (first audio stream).
pub fn media_addr(sdp: &str) -> SocketAddr {
    let parsed = tongdai_node::media::sdp::SessionDescription::parse(sdp).expect("valid SDP");
    let audio = &parsed.media()[0];
    let ip = parsed
        .effective_connection(audio)
        .expect("connection address")
        .address();
    SocketAddr::new(ip, audio.port())
}

/// Sets up a session through the API: returns its id and the relay's address facing the
/// caller and facing the callee.
pub fn call(
    media: &MediaProc,
    caller: &Phone,
    callee: &Phone,
    tenant: &str,
) -> (String, SocketAddr, SocketAddr) {
    let (code, created) = media.api(
        "POST",
        "/v1/media/sessions",
        Some(&serde_json::json!({"call_id": format!("call-{}", caller.port()), "tenant": tenant})),
    );
    assert_eq!(code, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let (code, offer) = media.api(
        "POST",
        &format!("/v1/media/sessions/{id}/offer"),
        Some(&serde_json::json!({"sdp": caller.sdp()})),
    );
    assert_eq!(code, 200, "{offer}");
    let (code, answer) = media.api(
        "POST",
        &format!("/v1/media/sessions/{id}/answer"),
        Some(&serde_json::json!({"sdp": callee.sdp()})),
    );
    assert_eq!(code, 200, "{answer}");
    let to_callee_leg = media_addr(offer["sdp"].as_str().expect("sdp"));
    let to_caller_leg = media_addr(answer["sdp"].as_str().expect("sdp"));
    (id, to_caller_leg, to_callee_leg)
}

/// RTP payloads of the packets (`payload_type` only), in arrival order.
pub fn payloads(packets: &[Vec<u8>], payload_type: u8) -> Vec<Vec<u8>> {
    packets
        .iter()
        .filter_map(|p| RtpPacket::parse(p).ok())
        .filter(|p| p.payload_type() == payload_type)
        .map(|p| p.payload().to_vec())
        .collect()
}

/// Goertzel power of `hz` in 8 kHz samples.
pub fn tone_power(samples: &[i16], hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / 8000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

/// Finds `<name>` anywhere under `dir`.
pub fn find_file(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

/// The left and right channels of a 16-bit stereo WAV.
pub fn channels(wav_bytes: &[u8]) -> (Vec<i16>, Vec<i16>) {
    let wav = tongdai_node::media::wav::parse(wav_bytes).expect("a WAV file");
    assert_eq!(wav.format.channels, 2);
    let data = wav.data(wav_bytes);
    let frames: Vec<(i16, i16)> = data
        .chunks_exact(4)
        .map(|f| {
            (
                i16::from_le_bytes([f[0], f[1]]),
                i16::from_le_bytes([f[2], f[3]]),
            )
        })
        .collect();
    frames.iter().copied().unzip()
}
