//! End-to-end test harness: starts the real `tongdai` binary and real SIP peers (SIPp,
//! sipsak) on loopback, on ports the OS hands out, and kills every process it started
//! when the test ends, passes or fails.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The workspace root (this crate lives in `<root>/tests`).
pub mod calls;
pub mod cluster;
pub mod deploy;
pub mod media;
pub mod softphone;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests crate has a parent directory")
        .to_path_buf()
}

/// Builds the `tongdai` binary once per test process and returns its path, so the tests
/// always run the code of this checkout.
pub fn tongdai_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "tongdai-node", "--bin", "tongdai"])
            .current_dir(workspace_root())
            .status()
            .expect("run cargo build for the tongdai binary");
        assert!(status.success(), "cargo build of the tongdai binary failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"));
        target.join("debug").join("tongdai")
    })
}

/// Fails the test with an install hint when a required tool is missing: a test never
/// passes silently without the peer it needs.
pub fn require_tool(name: &str, install: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{name}` is required by this test; install it with: {install}"))
}

/// A directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tongdai-test-{label}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port free for both UDP and TCP on 127.0.0.1, as the OS hands it out.
pub fn free_udp_tcp_port() -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().expect("local addr").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP after 100 tries");
}

pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind tcp")
        .port()
}

/// Kills the child on drop, whatever happened to the test.
#[derive(Debug)]
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `tongdai up`: a one-replica control plane and a SIP node in one process,
/// with its own config, ports, data and log files.
#[derive(Debug)]
pub struct Node {
    pub sip: SocketAddr,
    pub http: SocketAddr,
    /// The replica's admin API.
    pub api: SocketAddr,
    pub dir: TempDir,
    child: ChildGuard,
}

impl Node {
    /// Starts `tongdai up` with a config of the given extra TOML sections (appended to
    /// the listen addresses this harness picks) and waits until `/healthz` says ok.
    pub fn start(extra_toml: &str) -> Node {
        let dir = TempDir::new("node");
        let port = free_udp_tcp_port();
        let http_port = free_tcp_port();
        let quic_port = free_udp_tcp_port();
        let api_port = free_tcp_port();
        let config = format!(
            "[sip]\nlisten_udp = \"127.0.0.1:{port}\"\nlisten_tcp = \"127.0.0.1:{port}\"\n\
             [http]\nlisten = \"127.0.0.1:{http_port}\"\n[log]\nlevel = \"info\"\n\
             [replica]\nlisten = \"127.0.0.1:{quic_port}\"\napi_listen = \"127.0.0.1:{api_port}\"\n\
             data_dir = \"{data}\"\n[control_plane]\ncerts_dir = \"{certs}\"\n{extra_toml}",
            data = dir.path().join("data").display(),
            certs = dir.path().join("certs").display(),
        );
        let config_path = dir.path().join("tongdai.toml");
        std::fs::write(&config_path, config).expect("write config");
        let stdout = std::fs::File::create(dir.path().join("stdout.log")).expect("log file");
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).expect("log file");
        let child = Command::new(tongdai_bin())
            .arg("up")
            .arg("--config")
            .arg(&config_path)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("spawn tongdai");
        let mut node = Node {
            sip: SocketAddr::from(([127, 0, 0, 1], port)),
            http: SocketAddr::from(([127, 0, 0, 1], http_port)),
            api: SocketAddr::from(([127, 0, 0, 1], api_port)),
            dir,
            child: ChildGuard(child),
        };
        node.wait_healthy(Duration::from_secs(30));
        node
    }

    fn wait_healthy(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.0.try_wait().expect("poll child") {
                panic!("tongdai exited early ({status}):\n{}", self.stderr());
            }
            if http_get(self.http, "/healthz").is_some_and(|(code, _)| code == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "tongdai not healthy within {within:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// An admin API call with the operator token `tongdai up` wrote in its data dir.
    pub fn api(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let token = std::fs::read_to_string(self.dir.path().join("data/operator.token"))
            .expect("tongdai up writes its operator token");
        http_request(self.api, method, path, token.trim(), body)
            .unwrap_or_else(|| panic!("{method} {path}: no answer from the admin API"))
    }

    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// The real `tongdai ctl` against this node's admin API with the operator token
    /// `tongdai up` wrote: (exit code, stdout, stderr).
    pub fn ctl(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(tongdai_bin())
            .arg("ctl")
            .args(["--api", &format!("http://{}", self.api)])
            .arg("--token-file")
            .arg(self.dir.path().join("data/operator.token"))
            .args(args)
            .env_remove("TONGDAI_TOKEN")
            .env_remove("TONGDAI_TENANT")
            .output()
            .expect("run tongdai ctl");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Sends SIGTERM and waits up to `within` for the exit code.
    pub fn terminate(&mut self, within: Duration) -> Option<i32> {
        let pid = self.pid().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.wait_exit(within)
    }

    /// Waits up to `within` for the process to exit; its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.0.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.0.try_wait().expect("poll child").is_none()
    }

    /// The value of a Prometheus sample, matched by its full name-and-labels text.
    pub fn metric(&self, series: &str) -> Option<f64> {
        let (_, body) = http_get(self.http, "/metrics")?;
        body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
    }
}

/// A minimal HTTP/1.1 request with a bearer token and a JSON body; `None` if the
/// server is not answering.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    // Binary bodies (WAV downloads) come back as lossy text: enough for their status and
    // magic bytes.
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let out = String::from_utf8_lossy(&raw);
    let code = out.split(' ').nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((code, dechunk(&body)))
}

/// Decodes a `Transfer-Encoding: chunked` body; other bodies pass through.
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let Some((size, after)) = rest.split_once("\r\n") else {
            return body.to_owned();
        };
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            return body.to_owned();
        };
        if n == 0 {
            return out;
        }
        let Some(chunk) = after.get(..n) else {
            return body.to_owned();
        };
        out.push_str(chunk);
        rest = after.get(n + 2..).unwrap_or("");
    }
}

/// A minimal HTTP/1.1 GET over loopback; `None` if the server is not answering.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.split(' ').nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((code, body))
}

/// The outcome of one SIPp run.
#[derive(Debug)]
pub struct SippRun {
    pub status: ExitStatus,
    pub successful: u64,
    pub failed: u64,
    pub output: String,
    pub errors: String,
    /// What the scenario's `<log>` actions wrote, one line each.
    pub logs: String,
}

/// Runs a SIPp client scenario from `tests/scenarios` against `target`, bounded by
/// `calls` and `timeout`. `users` lines become the injection file (after `SEQUENTIAL`).
pub fn run_sipp(
    scenario: &str,
    target: SocketAddr,
    users: &[String],
    calls: usize,
    rate: u32,
    transport: &str,
    timeout: Duration,
) -> SippRun {
    require_tool("sipp", "apt-get install -y sip-tester");
    let dir = TempDir::new("sipp");
    let inf = dir.path().join("users.csv");
    std::fs::write(&inf, format!("SEQUENTIAL\n{}\n", users.join("\n"))).expect("write csv");
    let scenario_path = workspace_root().join("tests/scenarios").join(scenario);
    let local_port = if transport == "t1" {
        free_tcp_port()
    } else {
        free_udp_tcp_port()
    };
    let child = Command::new("sipp")
        .arg(target.to_string())
        .arg("-sf")
        .arg(&scenario_path)
        .arg("-inf")
        .arg(&inf)
        .args(["-m", &calls.to_string(), "-r", &rate.to_string()])
        .args([
            "-t",
            transport,
            "-i",
            "127.0.0.1",
            "-p",
            &local_port.to_string(),
        ])
        .args(["-timeout", &format!("{}s", timeout.as_secs())])
        .args([
            "-timeout_error",
            "-trace_err",
            "-trace_logs",
            "-nostdin",
            "-max_recv_loops",
            "1000",
        ])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sipp");
    let mut guard = ChildGuard(child);
    let deadline = Instant::now() + timeout + Duration::from_secs(10);
    let mut stdout = guard.0.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = guard.0.try_wait().expect("poll sipp") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "sipp did not finish within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = reader.join().unwrap_or_default();
    sipp_results(status, output, dir.path())
}

/// Reads a finished SIPp's counts from its final statistics and its log files.
pub fn sipp_results(status: ExitStatus, output: String, dir: &Path) -> SippRun {
    let count = |label: &str| {
        output
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.split('|').nth(2))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let read_logs = |suffix: &str| {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect::<Vec<_>>()
            .join("\n")
    };
    SippRun {
        status,
        successful: count("Successful call"),
        failed: count("Failed call"),
        errors: read_logs("_errors.log"),
        logs: read_logs("_logs.log"),
        output,
    }
}

/// Runs `scenario` once per user at a modest rate, bounded by a minute.
pub fn sipp_for_users(scenario: &str, node: &Node, users: &[String], transport: &str) -> SippRun {
    run_sipp(
        scenario,
        node.sip,
        users,
        users.len(),
        100,
        transport,
        Duration::from_secs(60),
    )
}

/// Injection lines `ext;[authentication username=ext password=pw];domain`.
pub fn sipp_users(
    first: u32,
    count: u32,
    password: impl Fn(u32) -> String,
    domain: &str,
) -> Vec<String> {
    (first..first + count)
        .map(|ext| {
            format!(
                "{ext};[authentication username={ext} password={}];{domain}",
                password(ext)
            )
        })
        .collect()
}

/// Polls `cond` until it holds or `within` passes; returns whether it held.
pub fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
