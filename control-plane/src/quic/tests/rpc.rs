//! Calls, concurrency, streaming, limits and errors between trusted peers.

use super::*;
use crate::quic::frame::{Envelope, Fault};

#[tokio::test]
async fn unary_round_trip() {
    within(async {
        let pki = Pki::new("unary");
        let server = Server::start(
            &pki.identity("replica-1"),
            any_port(),
            RpcOptions::default(),
        );
        let client = client(&pki.identity("replica-2"), &server.addr());
        let answer: String = client
            .call(&TestRequest::Echo("xin chào".into()), CALL)
            .await
            .expect("call");
        assert_eq!(answer, "xin chào");
        assert_eq!(server.calls(), 1);
    })
    .await;
}

#[tokio::test]
async fn many_concurrent_calls_share_one_connection() {
    within(async {
        let pki = Pki::new("concurrent");
        let server = Server::start(
            &pki.identity("replica-1"),
            any_port(),
            RpcOptions::default(),
        );
        let client = client(&pki.identity("node-1"), &server.addr());
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..300 {
            let client = client.clone();
            calls.spawn(async move {
                let answer: String = client
                    .call(&TestRequest::Echo(i.to_string()), CALL)
                    .await
                    .expect("call");
                assert_eq!(answer, i.to_string());
            });
        }
        while let Some(done) = calls.join_next().await {
            done.expect("call task");
        }
        assert_eq!(server.calls(), 300);
        assert_eq!(server.endpoint.quinn.open_connections(), 1);
    })
    .await;
}

#[tokio::test]
async fn streaming_delivers_every_item_then_ends() {
    within(async {
        let pki = Pki::new("stream");
        let server = Server::start(
            &pki.identity("replica-1"),
            any_port(),
            RpcOptions::default(),
        );
        let client = client(&pki.identity("node-1"), &server.addr());
        let mut items = client
            .subscribe::<_, u32>(&TestRequest::Count(1000))
            .await
            .expect("subscribe");
        let mut received = Vec::new();
        while let Some(item) = items.next().await {
            received.push(item.expect("item"));
        }
        assert_eq!(received, (0..1000).collect::<Vec<_>>());
        assert!(items.next().await.is_none(), "stays ended");
        // An empty stream ends at once.
        let mut none = client
            .subscribe::<_, u32>(&TestRequest::Count(0))
            .await
            .expect("subscribe");
        assert!(none.next().await.is_none());
    })
    .await;
}

#[tokio::test]
async fn dropping_a_subscription_tells_the_server() {
    within(async {
        let pki = Pki::new("unsubscribe");
        let mut server = Server::start(
            &pki.identity("replica-1"),
            any_port(),
            RpcOptions::default(),
        );
        let client = client(&pki.identity("node-1"), &server.addr());
        let mut watch = client
            .subscribe::<_, u32>(&TestRequest::Watch)
            .await
            .expect("subscribe");
        assert_eq!(watch.next().await.expect("first item").expect("ok"), 0);
        drop(watch);
        server
            .watch_ended
            .recv()
            .await
            .expect("server saw the subscriber leave");
    })
    .await;
}

#[tokio::test]
async fn the_server_sees_the_peers_name_and_role() {
    within(async {
        let pki = Pki::new("peer");
        let server = Server::start(
            &pki.identity("replica-1"),
            any_port(),
            RpcOptions::default(),
        );
        for (name, role) in [
            ("node-1", Role::Node),
            ("admin-1", Role::Admin),
            ("replica-2", Role::Replica),
        ] {
            let client = client(&pki.identity(name), &server.addr());
            let seen: (String, Role) = client.call(&TestRequest::WhoAmI, CALL).await.expect("call");
            assert_eq!(seen, (name.to_owned(), role));
            // And the client sees who the server is.
            let server_peer = client.connect().await.expect("connect");
            assert_eq!(server_peer.name, "replica-1");
            assert_eq!(server_peer.role, Role::Replica);
            assert_eq!(server_peer.addr, server.endpoint.local_addr());
        }
    })
    .await;
}

#[tokio::test]
async fn handler_errors_and_missing_replies_reach_the_caller() {
    within(async {
        let pki = Pki::new("errors");
        let server = Server::start(
            &pki.identity("replica-1"),
            any_port(),
            RpcOptions::default(),
        );
        let client = client(&pki.identity("node-1"), &server.addr());
        let failed = client
            .call::<_, String>(&TestRequest::Fail("no such tenant".into()), CALL)
            .await;
        assert_eq!(failed, Err(RpcError::Remote("no such tenant".into())));
        let silent = client.call::<_, String>(&TestRequest::Silent, CALL).await;
        assert_eq!(silent, Err(RpcError::NoReply));
        // A reply of the wrong type is a decode error, not garbage.
        let wrong = client
            .call::<_, (String, String)>(&TestRequest::Echo("x".into()), CALL)
            .await;
        assert!(matches!(wrong, Err(RpcError::Decode(_))), "{wrong:?}");
        // A request the server cannot decode: variant 200 of TestRequest does not exist.
        let bad = client.call::<_, String>(&200u8, CALL).await;
        assert!(matches!(bad, Err(RpcError::BadRequest(_))), "{bad:?}");
        // A stream that fails mid-way yields the error, then ends.
        let mut failing = client
            .subscribe::<_, u32>(&TestRequest::Fail("gone".into()))
            .await
            .expect("subscribe");
        assert_eq!(
            failing.next().await,
            Some(Err(RpcError::Remote("gone".into())))
        );
        assert_eq!(failing.next().await, None);
        // The connection survived all of it.
        let answer: String = client
            .call(&TestRequest::Echo("still here".into()), CALL)
            .await
            .expect("call");
        assert_eq!(answer, "still here");
    })
    .await;
}

#[tokio::test]
async fn a_call_times_out_without_hurting_the_connection() {
    within(async {
        let pki = Pki::new("timeout");
        let server = Server::start(
            &pki.identity("replica-1"),
            any_port(),
            RpcOptions::default(),
        );
        let client = client(&pki.identity("node-1"), &server.addr());
        let timeout = Duration::from_millis(200);
        let hung = client.call::<_, String>(&TestRequest::Hang, timeout).await;
        assert_eq!(hung, Err(RpcError::Timeout(timeout)));
        let answer: String = client
            .call(&TestRequest::Echo("next".into()), CALL)
            .await
            .expect("call");
        assert_eq!(answer, "next");
        assert_eq!(server.endpoint.quinn.open_connections(), 1);
    })
    .await;
}

#[tokio::test]
async fn an_oversize_request_is_refused_and_the_server_keeps_serving() {
    within(async {
        let pki = Pki::new("oversize");
        let small = RpcOptions {
            max_frame: 1024,
            ..RpcOptions::default()
        };
        let server = Server::start(&pki.identity("replica-1"), any_port(), small);
        let client = client(&pki.identity("node-1"), &server.addr());
        let big = TestRequest::Echo("x".repeat(100_000));
        let refused = client.call::<_, String>(&big, CALL).await;
        assert!(
            matches!(refused, Err(RpcError::FrameTooLarge { max: 1024, size }) if size > 100_000),
            "{refused:?}"
        );
        assert_eq!(server.calls(), 0, "the handler never saw it");
        let answer: String = client
            .call(&TestRequest::Echo("small".into()), CALL)
            .await
            .expect("the next call works");
        assert_eq!(answer, "small");
    })
    .await;
}

#[tokio::test]
async fn a_huge_length_prefix_is_refused_before_any_allocation() {
    within(async {
        let pki = Pki::new("prefix");
        let server = Server::start(
            &pki.identity("replica-1"),
            any_port(),
            RpcOptions::default(),
        );
        let client_endpoint =
            RpcEndpoint::bind_client(any_port(), &pki.identity("node-1"), RpcOptions::default())
                .expect("bind");
        // A raw stream claiming a 4 GiB frame, followed by a few bytes.
        let connection = client_endpoint
            .quinn
            .connect_with(
                client_endpoint.client_config.clone(),
                server.endpoint.local_addr(),
                CLUSTER_NAME,
            )
            .expect("connect")
            .await
            .expect("handshake");
        let (mut send, recv) = connection.open_bi().await.expect("open");
        send.write_all(&u32::MAX.to_be_bytes())
            .await
            .expect("write");
        send.write_all(b"abc").await.expect("write");
        let mut reader = frame::FrameReader::new(recv, 1024, "server".into());
        let reply: Option<Envelope<()>> = reader.next().await.expect("reply");
        assert!(
            matches!(
                reply,
                Some(Envelope::Fault(Fault::FrameTooLarge { size, max }))
                    if size == u64::from(u32::MAX) && max == 64 * 1024 * 1024
            ),
            "{reply:?}"
        );
        // Same connection, next call served.
        let client = client_endpoint.client(server.addr());
        let answer: String = client
            .call(&TestRequest::Echo("fine".into()), CALL)
            .await
            .expect("call");
        assert_eq!(answer, "fine");
    })
    .await;
}

#[tokio::test]
async fn oversize_messages_are_refused_on_the_client_side_too() {
    within(async {
        let pki = Pki::new("client-limit");
        let server = Server::start(
            &pki.identity("replica-1"),
            any_port(),
            RpcOptions::default(),
        );
        let small = RpcOptions {
            max_frame: 1024,
            ..RpcOptions::default()
        };
        let client = RpcEndpoint::bind_client(any_port(), &pki.identity("node-1"), small)
            .expect("bind")
            .client(server.addr());
        // Too large to send: refused before it leaves.
        let request = TestRequest::Echo("y".repeat(2000));
        let refused = client.call::<_, String>(&request, CALL).await;
        assert!(matches!(
            refused,
            Err(RpcError::FrameTooLarge { max: 1024, .. })
        ));
        // Too large to receive.
        let reply = client
            .call::<_, Vec<u8>>(&TestRequest::Blob(5000), CALL)
            .await;
        assert!(
            matches!(reply, Err(RpcError::FrameTooLarge { max: 1024, .. })),
            "{reply:?}"
        );
        assert_eq!(server.calls(), 1);
        let answer: String = client
            .call(&TestRequest::Echo("ok".into()), CALL)
            .await
            .expect("call");
        assert_eq!(answer, "ok");
    })
    .await;
}

#[tokio::test]
async fn a_snapshot_sized_reply_arrives_whole() {
    within(async {
        let pki = Pki::new("large");
        let server = Server::start(
            &pki.identity("replica-1"),
            any_port(),
            RpcOptions::default(),
        );
        let client = client(&pki.identity("replica-2"), &server.addr());
        let blob: Vec<u8> = client
            .call(&TestRequest::Blob(8 * 1024 * 1024), CALL)
            .await
            .expect("call");
        assert_eq!(blob.len(), 8 * 1024 * 1024);
    })
    .await;
}
