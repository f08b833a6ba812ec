//! Calls through a real node with real SIPp phones: phones that register then answer
//! (SIPp in server mode on the port they registered from), callers (SIPp clients), and
//! the G.711 tone files they stream.

use std::io::Read;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{ChildGuard, Node, SippRun, TempDir, require_tool, workspace_root};

/// A free even UDP port with the next one free too (RTP + RTCP for SIPp's -mp).
pub fn free_media_port() -> u16 {
    for _ in 0..200 {
        let a = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = a.local_addr().expect("addr").port();
        if port.is_multiple_of(2)
            && port < 65000
            && UdpSocket::bind(("127.0.0.1", port + 2)).is_ok()
        {
            return port;
        }
    }
    panic!("no free media port pair");
}

/// A free UDP port.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind udp")
        .port()
}

/// `secs` of a `freq` Hz sine as raw G.711 u-law, 8 kHz (what SIPp's rtp_stream plays).
pub fn ulaw_tone(freq: f64, secs: f64) -> Vec<u8> {
    let n = (8000.0 * secs) as usize;
    (0..n)
        .map(|i| {
            let s = (2.0 * std::f64::consts::PI * freq * i as f64 / 8000.0).sin() * 8000.0;
            linear_to_ulaw(s as i16)
        })
        .collect()
}

/// Two tones at once (a DTMF key: e.g. 697 + 1209 Hz is `1`), u-law, each at half the
/// level of [`ulaw_tone`].
pub fn ulaw_dual_tone(f1: f64, f2: f64, secs: f64) -> Vec<u8> {
    let n = (8000.0 * secs) as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / 8000.0;
            let s = ((2.0 * std::f64::consts::PI * f1 * t).sin()
                + (2.0 * std::f64::consts::PI * f2 * t).sin())
                * 4000.0;
            linear_to_ulaw(s as i16)
        })
        .collect()
}

/// G.711 u-law encoding (ITU-T G.711: bias, segment search, 4-bit mantissa).
fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && s & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// One SIPp process: a client scenario run to completion, or a phone in the background.
#[derive(Debug)]
pub struct Sipp {
    scenario: String,
    target: Option<SocketAddr>,
    local_port: u16,
    media_port: u16,
    users: Vec<String>,
    calls: usize,
    rate: u32,
    duration_ms: u64,
    timeout: Duration,
    files: Vec<(String, Vec<u8>)>,
    keys: Vec<(String, String)>,
    call_id_format: Option<String>,
}

/// A SIPp running in the background (a phone waiting for calls); killed on drop.
#[derive(Debug)]
pub struct SippPhone {
    pub port: u16,
    guard: ChildGuard,
    dir: TempDir,
    stdout: Option<std::thread::JoinHandle<String>>,
}

impl Sipp {
    pub fn new(scenario: &str) -> Sipp {
        Sipp {
            scenario: scenario.to_owned(),
            target: None,
            local_port: free_udp_port(),
            media_port: free_media_port(),
            users: Vec::new(),
            calls: 1,
            rate: 10,
            duration_ms: 1000,
            timeout: Duration::from_secs(60),
            files: Vec::new(),
            keys: Vec::new(),
            call_id_format: None,
        }
    }

    /// SIPp's Call-ID format (`-cid_str`, `%u` = call number), to know a call's Call-ID.
    pub fn call_ids(mut self, format: &str) -> Sipp {
        self.call_id_format = Some(format.to_owned());
        self
    }

    /// A `-key name value` keyword for the scenario (`[name]`).
    pub fn key(mut self, name: &str, value: impl ToString) -> Sipp {
        self.keys.push((name.to_owned(), value.to_string()));
        self
    }

    pub fn target(mut self, addr: SocketAddr) -> Sipp {
        self.target = Some(addr);
        self
    }

    /// The SIP port SIPp will use.
    pub fn local_port(&self) -> u16 {
        self.local_port
    }

    pub fn port(mut self, port: u16) -> Sipp {
        self.local_port = port;
        self
    }

    pub fn users(mut self, users: Vec<String>) -> Sipp {
        self.users = users;
        self
    }

    pub fn calls(mut self, calls: usize, rate: u32) -> Sipp {
        self.calls = calls;
        self.rate = rate;
        self
    }

    /// How long `<pause/>` waits (SIPp's -d).
    pub fn duration(mut self, d: Duration) -> Sipp {
        self.duration_ms = d.as_millis() as u64;
        self
    }

    pub fn timeout(mut self, t: Duration) -> Sipp {
        self.timeout = t;
        self
    }

    /// A file written into SIPp's working directory (tone files for rtp_stream).
    pub fn file(mut self, name: &str, bytes: Vec<u8>) -> Sipp {
        self.files.push((name.to_owned(), bytes));
        self
    }

    fn command(&self, dir: &Path) -> Command {
        require_tool("sipp", "apt-get install -y sip-tester");
        for (name, bytes) in &self.files {
            std::fs::write(dir.join(name), bytes).expect("write sipp file");
        }
        let mut cmd = Command::new("sipp");
        if let Some(target) = self.target {
            cmd.arg(target.to_string());
        }
        if !self.users.is_empty() {
            let inf = dir.join("users.csv");
            std::fs::write(&inf, format!("SEQUENTIAL\n{}\n", self.users.join("\n")))
                .expect("write csv");
            cmd.arg("-inf").arg(inf);
        }
        cmd.arg("-sf")
            .arg(
                workspace_root()
                    .join("tests/scenarios")
                    .join(&self.scenario),
            )
            .args(["-m", &self.calls.to_string(), "-r", &self.rate.to_string()])
            .args(["-t", "u1", "-i", "127.0.0.1", "-mi", "127.0.0.1"])
            .args(["-p", &self.local_port.to_string()])
            .args(["-mp", &self.media_port.to_string()])
            .args(["-d", &self.duration_ms.to_string()])
            .args(["-timeout", &format!("{}s", self.timeout.as_secs())])
            .args(["-timeout_error", "-trace_err", "-trace_logs", "-nostdin"]);
        if let Some(f) = &self.call_id_format {
            cmd.arg("-cid_str").arg(f);
        }
        for (name, value) in &self.keys {
            cmd.arg("-key").arg(name).arg(value);
        }
        cmd.current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Starts SIPp in the background (a phone in server mode).
    pub fn spawn(self) -> SippPhone {
        let dir = TempDir::new("sipp-phone");
        let mut child = self.command(dir.path()).spawn().expect("spawn sipp");
        let mut stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        SippPhone {
            port: self.local_port,
            guard: ChildGuard(child),
            dir,
            stdout: Some(reader),
        }
    }

    /// Runs a client scenario to the end.
    pub fn run(self) -> SippRun {
        let dir = TempDir::new("sipp");
        let child = self.command(dir.path()).spawn().expect("spawn sipp");
        let mut phone = SippPhone {
            port: self.local_port,
            guard: ChildGuard(child),
            dir,
            stdout: None,
        };
        let mut stdout = phone.guard.0.stdout.take().expect("stdout");
        phone.stdout = Some(std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        }));
        phone.wait(self.timeout + Duration::from_secs(10))
    }
}

impl SippPhone {
    /// Asks SIPp to finish (SIGUSR1: no new calls, exit once the calls in progress
    /// end) and collects its results.
    pub fn stop(self) -> SippRun {
        let pid = self.guard.0.id().to_string();
        let _ = Command::new("kill").args(["-USR1", &pid]).status();
        self.wait(Duration::from_secs(30))
    }

    /// Waits for SIPp to exit (it does after its -m calls) and collects its results.
    pub fn wait(mut self, within: Duration) -> SippRun {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.guard.0.try_wait().expect("poll sipp") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "sipp ({}) did not finish within {within:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let output = self
            .stdout
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        crate::sipp_results(status, output, self.dir.path())
    }
}

/// Registers `ext` (password `pw<ext>`, domain `domain`) from 127.0.0.1:`port`, so calls
/// to it are sent there; panics when the registration fails.
pub fn register(node: &Node, ext: u32, domain: &str, port: u16) {
    let users = crate::sipp_users(ext, 1, |e| format!("pw{e}"), domain);
    let run = Sipp::new("register_auth.xml")
        .target(node.sip)
        .port(port)
        .users(users)
        .run();
    assert_eq!(run.successful, 1, "registration of {ext} failed: {run:?}");
}

/// The tenant's CDRs through the admin API, newest first.
pub fn cdrs(node: &Node, tenant: &str) -> Vec<serde_json::Value> {
    let (code, body) = node.api("GET", &format!("/v1/tenants/{tenant}/cdrs?limit=100"), None);
    assert_eq!(code, 200, "GET cdrs: {body}");
    serde_json::from_str(&body).expect("a JSON list of CDRs")
}

/// Waits until the tenant has at least `n` CDRs (they are shipped about once a second)
/// and returns the newest.
pub fn newest_cdr(node: &Node, tenant: &str, n: usize) -> serde_json::Value {
    let mut list = Vec::new();
    let found = crate::wait_until(Duration::from_secs(15), || {
        list = cdrs(node, tenant);
        list.len() >= n
    });
    assert!(found, "{} CDRs, wanted {n}:\n{}", list.len(), node.stderr());
    list.swap_remove(0)
}

/// Replaces the call settings (`calls` JSON) of `tenant` through the admin API.
pub fn set_calls(node: &Node, tenant: &str, calls: &str) {
    let path = format!("/v1/tenants/{tenant}");
    let (code, body) = node.api("GET", &path, None);
    assert_eq!(code, 200, "{body}");
    let mut value: serde_json::Value = serde_json::from_str(&body).unwrap();
    value["calls"] = serde_json::from_str(calls).unwrap();
    let (code, body) = node.api("PUT", &path, Some(&value.to_string()));
    assert_eq!(code, 200, "{body}");
}

/// An admin API POST that must succeed (2xx).
pub fn post(node: &Node, path: &str, body: &str) {
    let (code, answer) = node.api("POST", path, Some(body));
    assert!((200..300).contains(&code), "POST {path}: {code} {answer}");
}
