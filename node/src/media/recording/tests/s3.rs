//! Against a real S3-compatible server: moto's, started here on a free loopback port and
//! killed when the test ends. Without `moto_server` on the PATH the test fails and says
//! how to install it; it never passes without having talked to a server.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command as Process, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;

use super::super::config::{RecordingConfig, StoreConfig};
use super::super::service::{Command, RecorderService};
use super::super::spool::SpoolWriter;
use super::super::store::{RecordingStore, S3_PART_SIZE, utc_day};
use super::super::{RecordingId, RecordingMeta};
use super::service::call_batches;
use super::sha256_hex;

const INSTALL: &str = "pip install 'moto[server]'";

/// A running `moto_server`, killed on drop.
struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn start_moto() -> Moto {
    let port = free_port();
    let mut child = match Process::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!(
                "moto_server is not installed; this test needs an S3-compatible server: {INSTALL}"
            )
        }
        Err(e) => panic!("cannot run moto_server ({e}); {INSTALL}"),
    };
    // The server says when it listens; the reader keeps draining its log after that so
    // it never blocks on a full pipe.
    let stderr = child.stderr.take().expect("stderr is piped");
    let (ready, listening) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("Running on") {
                let _ = ready.send(());
            }
        }
    });
    let mut moto = Moto { child, port };
    if listening.recv_timeout(Duration::from_secs(60)).is_err() {
        let status = moto.child.try_wait().ok().flatten();
        panic!("moto_server did not start listening within 60 s (exit: {status:?}); {INSTALL}");
    }
    TcpStream::connect(("127.0.0.1", port)).expect("moto_server accepts connections");
    moto
}

fn create_bucket(port: u16, bucket: &str) {
    let response = ureq::put(format!("http://127.0.0.1:{port}/{bucket}"))
        .send_empty()
        .expect("create the bucket");
    assert_eq!(response.status(), 200);
}

#[test]
fn recordings_ship_to_an_s3_compatible_server() {
    // The shipper's log (why an upload failed) shows with a failing test's output.
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let moto = start_moto();
    create_bucket(moto.port, "recordings");
    let root = tempfile::tempdir().unwrap();
    let spool = root.path().join("spool");
    let config: RecordingConfig = toml::from_str(&format!(
        r#"
        spool_dir = "{}"
        store = "s3"
        bucket = "recordings"
        prefix = "calls"
        endpoint = "http://127.0.0.1:{}"
        region = "us-east-1"
        "#,
        spool.display(),
        moto.port
    ))
    .unwrap();
    assert!(matches!(config.store, StoreConfig::S3(_)));
    // Credentials from the environment (moto takes any).
    let env = [
        ("AWS_ACCESS_KEY_ID".to_owned(), "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), "testing".to_owned()),
    ];
    let store = RecordingStore::from_config_with_env(&config.store, &env).unwrap();
    let mut service = RecorderService::new(&config.spool_dir, store);
    service.flush_interval = Duration::from_millis(20);
    service.retry_initial = Duration::from_millis(50);
    let handle = service.start().unwrap();

    // A call through the service.
    let id = RecordingId(1);
    let meta = RecordingMeta::new("acme", "call-1@example.com", 1_700_000_000_000);
    let at = Instant::now() + Duration::from_secs(1);
    handle
        .send(Command::Start {
            id,
            meta: meta.clone(),
            at,
        })
        .unwrap();
    for batch in call_batches(&handle, id, at) {
        handle.send(Command::Packets(batch)).unwrap();
    }
    handle.send(Command::Stop { id }).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    assert!(
        handle.wait_for(deadline, |s| s.shipped == 1),
        "{:?}",
        handle.stats()
    );
    assert!(std::fs::read_dir(&spool).unwrap().next().is_none());

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = handle.store();
    let summary = rt
        .block_on(store.summary("acme", &meta.id))
        .unwrap()
        .expect("in the store");
    assert!(summary.complete);
    assert_eq!(summary.duration_ms, 2000);
    let audio = rt.block_on(store.audio("acme", &meta.id)).unwrap().unwrap();
    assert_eq!(sha256_hex(&audio), summary.sha256);
    assert_eq!(audio.len() as u64, summary.bytes);
    assert_eq!(
        rt.block_on(store.summary("globex", &meta.id)).unwrap(),
        None
    );
    assert_eq!(rt.block_on(store.audio("globex", &meta.id)).unwrap(), None);

    // A long recording goes up in parts.
    let big_meta = RecordingMeta::new("acme", "call-2@example.com", 1_700_100_000_000);
    let mut writer = SpoolWriter::create(&spool, big_meta.clone()).unwrap();
    let pcm: Vec<u8> = (0..S3_PART_SIZE + 4000).map(|i| (i % 253) as u8).collect();
    writer.append(&pcm).unwrap();
    let big = writer.finish().unwrap();
    let stored = rt.block_on(store.ship(&big)).unwrap();
    let key = format!(
        "calls/acme/{}/{}.wav",
        utc_day(big_meta.started_unix_ms),
        big_meta.id
    );
    assert_eq!(stored.location, format!("s3://recordings/{key}"));
    let RecordingStore::S3 { store: s3, .. } = store else {
        panic!("not the S3 store");
    };
    let head = rt.block_on(s3.head(&ObjectPath::from(key))).unwrap();
    assert_eq!(head.size, big.summary.bytes);
    let audio = rt
        .block_on(store.audio("acme", &big_meta.id))
        .unwrap()
        .unwrap();
    assert_eq!(sha256_hex(&audio), big.summary.sha256);

    let listed = rt.block_on(store.list("acme")).unwrap();
    assert_eq!(listed, vec![summary.clone(), big.summary.clone()]);
    assert!(rt.block_on(store.delete("acme", &meta.id)).unwrap());
    assert_eq!(rt.block_on(store.list("acme")).unwrap(), vec![big.summary]);

    let report = handle.shutdown(Instant::now() + Duration::from_secs(30));
    assert!(
        report.all_shipped && report.remaining.is_empty(),
        "{report:?}"
    );
}
