//! A real softphone for end-to-end tests: a headless baresip (Debian's 1.0) registered to a
//! node, driven over its `ctrl_tcp` control socket (netstring-framed JSON commands, events
//! back), playing a tone from a WAV file (`aufile`) and recording what it hears to another
//! WAV file (the `sndfile` filter's decode dump).
//!
//! baresip 1.0 facts this relies on (read from its v1.0.0 sources): `aufile` is an audio
//! *source* only (no `aufile` player before later releases), so what the phone hears is
//! taken from the `sndfile` audio filter, which writes `dump-<time>-dec.wav` (decoded
//! audio) and `dump-<time>-enc.wav` (sent audio) into `snd_path` for every call; with no
//! player module loaded, decoding and filters still run on each RTP packet. The SIP stack
//! also opens a TLS listener on `sip_listen`'s port + 1, and `ctrl_tcp` takes one client at a
//! time and sends events only to it. Its SIP library (libre 1.1) answers only MD5 digest
//! challenges and gives up on a 401 carrying any other algorithm, so the node must offer
//! MD5 alone (`[registrar] algorithms = ["MD5"]`).

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tongdai_node::media::wav::{self, Encoding, WavFormat};

use crate::{ChildGuard, TempDir, require_tool};

/// How to install baresip with the modules used here.
pub const BARESIP_INSTALL: &str = "apt-get install -y baresip-core";

/// Where distributions put baresip's modules.
const MODULE_DIRS: [&str; 3] = [
    "/usr/lib/baresip/modules",
    "/usr/lib/x86_64-linux-gnu/baresip/modules",
    "/usr/local/lib/baresip/modules",
];

/// The modules the phone loads: G.711, accounts from the `accounts` file, the WAV source,
/// the WAV recorder, the command set (`dial`, `hangup`, `quit`) and the control socket.
const MODULES: [&str; 4] = ["g711.so", "account.so", "aufile.so", "sndfile.so"];
const APP_MODULES: [&str; 2] = ["menu.so", "ctrl_tcp.so"];

/// One softphone's settings.
#[derive(Debug, Clone)]
pub struct PhoneConfig {
    pub extension: String,
    pub password: String,
    /// The SIP domain of the account (the tenant id).
    pub domain: String,
    /// The node's SIP address: the outbound proxy every request goes through.
    pub proxy: SocketAddr,
    /// The tone the phone plays, in Hz.
    pub tone_hz: f64,
    /// `auto` to answer incoming calls at once, `manual` to let them ring.
    pub answer_mode: &'static str,
}

/// A running baresip, killed on drop.
#[derive(Debug)]
pub struct Baresip {
    pub extension: String,
    pub sip_port: u16,
    dir: TempDir,
    ctrl: Ctrl,
    child: ChildGuard,
}

impl Baresip {
    /// Writes the phone's config directory and starts baresip on it; returns once its
    /// control socket is connected (registration goes on in the background).
    pub fn start(cfg: &PhoneConfig) -> Baresip {
        let bin = require_tool("baresip", BARESIP_INSTALL);
        let modules = module_dir();
        let dir = TempDir::new(&format!("baresip-{}", cfg.extension));
        let (sip_port, ctrl_port) = free_phone_ports();
        std::fs::create_dir_all(dir.path().join("rec")).expect("create rec dir");
        let tone = dir.path().join("tone.wav");
        std::fs::write(&tone, tone_wav(cfg.tone_hz, 60.0)).expect("write tone wav");
        std::fs::write(
            dir.path().join("config"),
            config_file(
                &modules,
                sip_port,
                ctrl_port,
                &tone,
                &dir.path().join("rec"),
            ),
        )
        .expect("write baresip config");
        std::fs::write(dir.path().join("accounts"), account_line(cfg)).expect("write accounts");
        let log = std::fs::File::create(dir.path().join("baresip.log")).expect("log file");
        let child = Command::new(bin)
            .arg("-f")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn baresip");
        let mut child = ChildGuard(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], ctrl_port));
        let deadline = Instant::now() + Duration::from_secs(15);
        let stream = loop {
            if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                break s;
            }
            if let Some(status) = child.0.try_wait().expect("poll baresip") {
                panic!(
                    "baresip {} exited early ({status}):\n{}",
                    cfg.extension,
                    read_log(dir.path())
                );
            }
            assert!(
                Instant::now() < deadline,
                "baresip {}: control socket {addr} not listening within 15 s:\n{}",
                cfg.extension,
                read_log(dir.path())
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Baresip {
            extension: cfg.extension.clone(),
            sip_port,
            ctrl: Ctrl::new(stream),
            dir,
            child,
        }
    }

    /// The phone's console output.
    pub fn log(&self) -> String {
        read_log(self.dir.path())
    }

    /// Runs a `ctrl_tcp` command (`dial`, `hangup`, `quit`, ...); the response's `data`,
    /// or the reason it failed.
    pub fn command(&mut self, command: &str, params: &str) -> Result<String, String> {
        let log = self.log();
        self.ctrl
            .command(command, params)
            .map_err(|e| format!("{e}\n{log}"))
    }

    /// Waits for an event of `kind` (`CALL_ESTABLISHED`, `CALL_CLOSED`, ...); panics with
    /// the events seen and the phone's log when none comes within `within`.
    pub fn wait_event(&mut self, kind: &str, within: Duration) -> Value {
        match self.ctrl.wait_event(kind, within) {
            Some(event) => event,
            None => panic!(
                "baresip {}: no {kind} event within {within:?}; events: {:?}\n{}",
                self.extension,
                self.ctrl.events,
                self.log()
            ),
        }
    }

    /// Every event received so far, oldest first.
    pub fn events(&self) -> &[Value] {
        &self.ctrl.events
    }

    /// The WAV file of what the phone heard (the `sndfile` decode dump of its one call),
    /// if it exists yet.
    pub fn heard_file(&self) -> Option<PathBuf> {
        self.recordings("-dec.wav").into_iter().next()
    }

    /// The recordings in `rec/` whose names end with `suffix`.
    pub fn recordings(&self, suffix: &str) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("rec"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(suffix))
            .collect();
        out.sort();
        out
    }

    /// Seconds of audio heard so far (from the size of the decode dump).
    pub fn heard_secs(&self) -> f64 {
        self.heard_file()
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0.0, |m| m.len().saturating_sub(44) as f64 / 16000.0)
    }

    /// Asks baresip to quit (it unregisters first) and waits up to `within` for it to
    /// exit; whether it did. The guard kills it otherwise.
    pub fn quit(&mut self, within: Duration) -> bool {
        let _ = self.ctrl.command("quit", "");
        crate::wait_until(within, || self.child.0.try_wait().ok().flatten().is_some())
    }
}

fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("baresip.log")).unwrap_or_default()
}

/// The first directory holding baresip's modules; panics with the install hint when a
/// needed module is missing.
fn module_dir() -> PathBuf {
    let dir = MODULE_DIRS
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join("ctrl_tcp.so").is_file())
        .unwrap_or_else(|| {
            panic!(
                "baresip's modules were not found in {MODULE_DIRS:?}; install them with: \
                 {BARESIP_INSTALL}"
            )
        });
    for module in MODULES.iter().chain(&APP_MODULES) {
        assert!(
            dir.join(module).is_file(),
            "baresip module {module} is missing from {}; install it with: {BARESIP_INSTALL}",
            dir.display()
        );
    }
    dir
}

/// A SIP port free for UDP and TCP with the next port free for TCP (baresip's TLS
/// listener), and a control port apart from both.
fn free_phone_ports() -> (u16, u16) {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().expect("local addr").port();
        if port >= 65534
            || TcpListener::bind(("127.0.0.1", port)).is_err()
            || TcpListener::bind(("127.0.0.1", port + 1)).is_err()
        {
            continue;
        }
        let ctrl = crate::free_tcp_port();
        if ctrl != port && ctrl != port + 1 {
            return (port, ctrl);
        }
    }
    panic!("no free SIP/control ports for baresip after 100 tries");
}

/// The baresip `config` file: loopback only, no sound card, G.711, a WAV tone as the
/// microphone, what is heard dumped to WAV files in `rec`, the control socket.
pub fn config_file(
    modules: &Path,
    sip_port: u16,
    ctrl_port: u16,
    tone: &Path,
    rec: &Path,
) -> String {
    let mut out = format!(
        "# written by tongdai-tests\n\
         poll_method epoll\n\
         sip_listen 127.0.0.1:{sip_port}\n\
         net_interface 127.0.0.1\n\
         # no audio player: what the phone hears is written by the sndfile filter\n\
         audio_source aufile,{tone}\n\
         snd_path {rec}\n\
         ctrl_tcp_listen 127.0.0.1:{ctrl_port}\n\
         module_path {modules}\n",
        tone = tone.display(),
        rec = rec.display(),
        modules = modules.display(),
    );
    for m in MODULES {
        out.push_str(&format!("module {m}\n"));
    }
    for m in APP_MODULES {
        out.push_str(&format!("module_app {m}\n"));
    }
    out
}

/// The `accounts` line: the extension in the tenant's domain, its password, the node as
/// outbound proxy (unquoted: libre 1.1 keeps quotes in the value and then refuses the
/// route's scheme), the answer mode.
pub fn account_line(cfg: &PhoneConfig) -> String {
    format!(
        "<sip:{ext}@{domain}>;auth_pass={pw};outbound=sip:{proxy};answermode={mode};regint=300\n",
        ext = cfg.extension,
        domain = cfg.domain,
        pw = cfg.password,
        proxy = cfg.proxy,
        mode = cfg.answer_mode,
    )
}

/// `secs` of a `hz` sine (amplitude 8000) as a mono 16-bit 8 kHz WAV file.
pub fn tone_wav(hz: f64, secs: f64) -> Vec<u8> {
    let n = (8000.0 * secs) as usize;
    let format = WavFormat {
        encoding: Encoding::Pcm16,
        channels: 1,
        sample_rate: 8000,
    };
    let mut out = format.header((n * 2) as u32).to_vec();
    for i in 0..n {
        let s = (2.0 * std::f64::consts::PI * hz * i as f64 / 8000.0).sin() * 8000.0;
        out.extend_from_slice(&(s as i16).to_le_bytes());
    }
    out
}

/// The samples of a mono 16-bit 8 kHz WAV file.
pub fn mono_samples(path: &Path) -> Vec<i16> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let parsed = wav::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        (
            parsed.format.encoding,
            parsed.format.channels,
            parsed.format.sample_rate
        ),
        (Encoding::Pcm16, 1, 8000),
        "{}: not mono 16-bit 8 kHz",
        path.display()
    );
    parsed
        .data(&bytes)
        .chunks_exact(2)
        .map(|s| i16::from_le_bytes([s[0], s[1]]))
        .collect()
}

/// The share of `samples`' energy at `hz` (Goertzel): about 1 for a pure tone at `hz`,
/// about 0 for silence or another tone.
pub fn tone_share(samples: &[i16], hz: f64) -> f64 {
    let energy: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    if energy == 0.0 {
        return 0.0;
    }
    2.0 * crate::media::tone_power(samples, hz) / (samples.len() as f64 * energy)
}

/// A `ctrl_tcp` client: netstring-framed JSON both ways; a reader thread parses what
/// baresip sends (command responses and events).
#[derive(Debug)]
struct Ctrl {
    stream: TcpStream,
    incoming: Receiver<Value>,
    /// Events received so far (for waiting and for failure messages).
    events: Vec<Value>,
    /// Responses not yet claimed by a command.
    responses: Vec<Value>,
    next_token: u32,
}

impl Ctrl {
    fn new(stream: TcpStream) -> Ctrl {
        let (tx, incoming) = channel();
        let reader = stream.try_clone().expect("clone control socket");
        std::thread::spawn(move || {
            let mut reader = BufReader::new(reader);
            while let Some(frame) = read_netstring(&mut reader) {
                let Ok(value) = serde_json::from_slice::<Value>(&frame) else {
                    continue;
                };
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        Ctrl {
            stream,
            incoming,
            events: Vec::new(),
            responses: Vec::new(),
            next_token: 0,
        }
    }

    /// Takes what the reader thread has parsed, waiting up to `within` for one message.
    fn pump(&mut self, within: Duration) -> Result<(), String> {
        let first = match self.incoming.recv_timeout(within) {
            Ok(v) => v,
            Err(RecvTimeoutError::Timeout) => return Ok(()),
            Err(RecvTimeoutError::Disconnected) => {
                return Err("the control connection was closed".into());
            }
        };
        for value in std::iter::once(first).chain(self.incoming.try_iter().collect::<Vec<_>>()) {
            if value["response"] == true {
                self.responses.push(value);
            } else {
                self.events.push(value);
            }
        }
        Ok(())
    }

    fn command(&mut self, command: &str, params: &str) -> Result<String, String> {
        self.next_token += 1;
        let token = format!("t{}", self.next_token);
        let body = json!({"command": command, "params": params, "token": token}).to_string();
        let frame = format!("{}:{body},", body.len());
        self.stream
            .write_all(frame.as_bytes())
            .map_err(|e| format!("send {command}: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(i) = self.responses.iter().position(|r| r["token"] == token) {
                let r = self.responses.remove(i);
                let data = r["data"].as_str().unwrap_or_default().to_owned();
                return if r["ok"] == true {
                    Ok(data)
                } else {
                    Err(format!("{command} {params}: failed: {data}"))
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("{command} {params}: no response within 10 s"));
            }
            self.pump(left)?;
        }
    }

    fn wait_event(&mut self, kind: &str, within: Duration) -> Option<Value> {
        let deadline = Instant::now() + within;
        let mut checked = 0;
        loop {
            if let Some(e) = self.events[checked..].iter().find(|e| e["type"] == kind) {
                return Some(e.clone());
            }
            checked = self.events.len();
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.pump(left).is_err() {
                return None;
            }
        }
    }
}

/// Reads one netstring (`<len>:<bytes>,`); `None` at the end of the stream or on a
/// framing error.
fn read_netstring(r: &mut impl Read) -> Option<Vec<u8>> {
    let mut len = 0usize;
    let mut byte = [0u8; 1];
    loop {
        r.read_exact(&mut byte).ok()?;
        match byte[0] {
            b':' => break,
            d @ b'0'..=b'9' => len = len.checked_mul(10)?.checked_add(usize::from(d - b'0'))?,
            _ => return None,
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    r.read_exact(&mut byte).ok()?;
    (byte[0] == b',').then_some(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netstrings_are_framed_and_bad_frames_end_the_stream() {
        let mut input: &[u8] = b"5:hello,0:,3:abcX";
        assert_eq!(read_netstring(&mut input).as_deref(), Some(&b"hello"[..]));
        assert_eq!(read_netstring(&mut input).as_deref(), Some(&b""[..]));
        assert_eq!(read_netstring(&mut input), None, "missing comma");
        let mut bad: &[u8] = b"x:abc,";
        assert_eq!(read_netstring(&mut bad), None);
    }

    #[test]
    fn a_tone_wav_reads_back_as_that_tone() {
        let dir = TempDir::new("tone-wav");
        let path = dir.path().join("t.wav");
        std::fs::write(&path, tone_wav(440.0, 1.0)).unwrap();
        let samples = mono_samples(&path);
        assert_eq!(samples.len(), 8000);
        assert!(tone_share(&samples, 440.0) > 0.9);
        assert!(tone_share(&samples, 1000.0) < 0.01);
        assert_eq!(tone_share(&[0; 100], 440.0), 0.0);
    }

    #[test]
    fn the_account_line_names_the_proxy_unquoted() {
        let line = account_line(&PhoneConfig {
            extension: "2000".into(),
            password: "pw2000".into(),
            domain: "e2e".into(),
            proxy: "127.0.0.1:5060".parse().unwrap(),
            tone_hz: 440.0,
            answer_mode: "auto",
        });
        assert_eq!(
            line,
            "<sip:2000@e2e>;auth_pass=pw2000;outbound=sip:127.0.0.1:5060;answermode=auto;\
             regint=300\n"
        );
    }
}
