//! Tests of the QUIC layer over real sockets on 127.0.0.1 (port 0), each bounded by a
//! timeout; nothing sleeps, everything waits for an event.

mod certs;
mod refusal;
mod restart;
mod rpc;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::*;

/// Upper bound for any one test.
const LIMIT: Duration = Duration::from_secs(20);
/// Per-call timeout where a call is expected to succeed.
const CALL: Duration = Duration::from_secs(5);

async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(LIMIT, future)
        .await
        .expect("the test did not finish in time")
}

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A directory unique to one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "tongdai-quic-{}-{label}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A CA with certificates for `replica-1`, `replica-2`, `node-1` and `admin-1`.
struct Pki {
    dir: TempDir,
}

impl Pki {
    fn new(label: &str) -> Pki {
        let dir = TempDir::new(label);
        init_ca(dir.path(), false).expect("init CA");
        for (name, role) in [
            ("replica-1", Role::Replica),
            ("replica-2", Role::Replica),
            ("node-1", Role::Node),
            ("admin-1", Role::Admin),
        ] {
            issue(dir.path(), name, role, &[], dir.path()).expect("issue");
        }
        Pki { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn identity(&self, name: &str) -> Identity {
        Identity::from_dir(self.path(), name).expect("load identity")
    }
}

/// The requests the test service understands.
#[derive(Debug, Serialize, Deserialize)]
enum TestRequest {
    Echo(String),
    WhoAmI,
    /// Streams `0..n`.
    Count(u32),
    Fail(String),
    /// Replies with this many zero bytes.
    Blob(u32),
    /// Drops the reply without answering.
    Silent,
    /// Never answers.
    Hang,
    /// Streams one item, then waits for the subscriber to leave and reports it.
    Watch,
}

#[derive(Debug)]
struct TestService {
    calls: AtomicUsize,
    watch_ended: mpsc::UnboundedSender<()>,
}

impl Service for TestService {
    type Request = TestRequest;

    async fn handle(&self, peer: &Peer, request: TestRequest, reply: Reply) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let _ = match request {
            TestRequest::Echo(text) => reply.send_one(&text).await,
            TestRequest::WhoAmI => reply.send_one(&(peer.name.as_str(), peer.role)).await,
            TestRequest::Count(n) => {
                let mut stream = reply.stream::<u32>();
                for i in 0..n {
                    if stream.send(&i).await.is_err() {
                        return;
                    }
                }
                Ok(())
            }
            TestRequest::Fail(text) => reply.fail(text).await,
            TestRequest::Blob(len) => reply.send_one(&vec![0u8; len as usize]).await,
            TestRequest::Silent => Ok(()),
            TestRequest::Hang => std::future::pending().await,
            TestRequest::Watch => {
                let mut stream = reply.stream::<u32>();
                let _ = stream.send(&0).await;
                stream.closed().await;
                let _ = self.watch_ended.send(());
                Ok(())
            }
        };
    }
}

/// A running test server.
struct Server {
    endpoint: RpcEndpoint,
    service: Arc<TestService>,
    task: JoinHandle<()>,
    watch_ended: mpsc::UnboundedReceiver<()>,
}

impl Server {
    fn start(identity: &Identity, addr: SocketAddr, options: RpcOptions) -> Server {
        let endpoint = RpcEndpoint::bind(addr, identity, options).expect("bind server");
        let (watch_tx, watch_ended) = mpsc::unbounded_channel();
        let service = Arc::new(TestService {
            calls: AtomicUsize::new(0),
            watch_ended: watch_tx,
        });
        let task = tokio::spawn(serve(endpoint.clone(), service.clone()));
        Server {
            endpoint,
            service,
            task,
            watch_ended,
        }
    }

    fn addr(&self) -> String {
        self.endpoint.local_addr().to_string()
    }

    fn calls(&self) -> usize {
        self.service.calls.load(Ordering::Relaxed)
    }

    /// Closes every connection, frees the port and waits for the serve task to end.
    async fn stop(self) {
        self.endpoint.close();
        self.endpoint.wait_idle().await;
        self.task.await.expect("serve task");
    }
}

/// A client endpoint for `identity` dialing `target`.
fn client(identity: &Identity, target: &str) -> Client {
    RpcEndpoint::bind_client(any_port(), identity, RpcOptions::default())
        .expect("bind client")
        .client(target)
}
