//! A client keeps working when the server it talks to goes away and comes back on the
//! same address.

use tokio::sync::oneshot;

use super::*;

#[tokio::test]
async fn the_client_reconnects_after_the_server_restarts_on_the_same_port() {
    within(async {
        let pki = Pki::new("restart");
        let identity = pki.identity("replica-1");
        let server = Server::start(&identity, any_port(), RpcOptions::default());
        let addr = server.endpoint.local_addr();
        let client = client(&pki.identity("replica-2"), &addr.to_string());
        let first: String = client
            .call(&TestRequest::Echo("before".into()), CALL)
            .await
            .expect("call");
        assert_eq!(first, "before");

        server.stop().await;
        let down = client
            .call::<_, String>(
                &TestRequest::Echo("down".into()),
                Duration::from_millis(300),
            )
            .await;
        assert!(down.is_err(), "nobody is listening: {down:?}");

        let restarted = Server::start(&identity, addr, RpcOptions::default());
        let after: String = client
            .call(&TestRequest::Echo("after".into()), CALL)
            .await
            .expect("the client redials by itself");
        assert_eq!(after, "after");
        assert_eq!(restarted.calls(), 1);
    })
    .await;
}

/// A server in its own runtime on its own thread, so it can die without a word: dropping
/// the runtime drops every task mid-flight and closes the socket, like a killed process.
struct Crashable {
    addr: SocketAddr,
    crash: oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Crashable {
    fn start(identity: Identity, addr: SocketAddr) -> Crashable {
        let (bound_tx, bound_rx) = std::sync::mpsc::channel();
        let (crash, crashed) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let server = Server::start(&identity, addr, RpcOptions::default());
                bound_tx
                    .send(server.endpoint.local_addr())
                    .expect("report address");
                let _ = crashed.await;
                drop(server);
            });
            // Every task, the endpoint driver included, is dropped without another poll:
            // no CONNECTION_CLOSE is ever sent.
            drop(runtime);
        });
        let addr = bound_rx.recv().expect("server bound");
        Crashable {
            addr,
            crash,
            thread,
        }
    }

    fn crash(self) {
        let _ = self.crash.send(());
        self.thread.join().expect("server thread");
    }
}

#[tokio::test]
async fn after_a_crash_and_restart_the_client_recovers_before_the_idle_timeout() {
    within(async {
        let pki = Pki::new("crash");
        let crashable = Crashable::start(pki.identity("replica-1"), any_port());
        let addr = crashable.addr;
        // An idle timeout far beyond the test's limit: only the stateless reset sent by
        // the restarted server (same identity, same reset key) can end the dead connection.
        let options = RpcOptions {
            idle_timeout: Duration::from_secs(600),
            ..RpcOptions::default()
        };
        let client = RpcEndpoint::bind_client(any_port(), &pki.identity("replica-2"), options)
            .expect("bind")
            .client(addr.to_string());
        let first: String = client
            .call(&TestRequest::Echo("before".into()), CALL)
            .await
            .expect("call");
        assert_eq!(first, "before");

        crashable.crash();
        let restarted = Server::start(&pki.identity("replica-1"), addr, RpcOptions::default());

        // The first call may find the connection already reset (a keep-alive met the new
        // server first); if not, it is the one that meets the reset, and fails saying why.
        // Without the reset it would hang until the 600 s idle timeout.
        let stale = client
            .call::<_, String>(&TestRequest::Echo("stale".into()), CALL)
            .await;
        let reset_seen = match &stale {
            Ok(answer) => {
                assert_eq!(answer, "stale");
                false
            }
            Err(RpcError::Closed(reason)) if reason.contains("restarted") => true,
            Err(other) => panic!("expected a reset or a fresh connection, got {other:?}"),
        };
        let after: String = client
            .call(&TestRequest::Echo("after".into()), CALL)
            .await
            .expect("the next call redials");
        assert_eq!(after, "after");
        assert_eq!(restarted.calls(), if reset_seen { 1 } else { 2 });
    })
    .await;
}
