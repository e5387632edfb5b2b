//! API Gateway's limits and the fault injection, on the in-memory gateway.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use wspush_domain::ConnectionId;
use wspush_local::{Faults, LocalConfig};
use wspush_ports::Clock;

use crate::helpers::{Setup, http, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_socket_is_closed_going_away_and_its_connection_forgotten() {
    let setup = Setup::memory_with(LocalConfig {
        idle_timeout: Duration::from_millis(300),
        ..LocalConfig::default()
    })
    .await;
    let mut ana = setup.connect("ana").await;

    let frame = tokio::time::timeout(Duration::from_secs(5), ana.socket.next())
        .await
        .expect("closed within 5 s");

    match frame {
        Some(Ok(Message::Close(Some(close)))) => assert_eq!(close.code, CloseCode::Away),
        other => panic!("expected a close frame, got {other:?}"),
    }
    let forgotten = wait_for(|| setup.gateway.open_connections().is_empty().then_some(())).await;
    assert!(forgotten.is_some());
    let mut stored = true;
    for _ in 0..50 {
        let found = setup
            .gateway
            .store()
            .get(
                &ConnectionId::parse(ana.id.as_str()).expect("valid"),
                wspush_adapters::SystemClock.now(),
            )
            .await
            .expect("read");
        if found.is_none() {
            stored = false;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!stored, "$disconnect removed it");
    setup.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_is_closed_at_the_maximum_duration_even_when_busy() {
    let setup = Setup::memory_with(LocalConfig {
        max_duration: Duration::from_millis(400),
        ..LocalConfig::default()
    })
    .await;
    let mut ana = setup.connect("ana").await;

    let mut closed = false;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Keep the socket busy, so that only the maximum duration can close it.
        let message = Message::Text(r#"{"action":"subscribe","topics":["room:1"]}"#.into());
        if ana.socket.send(message).await.is_err() {
            closed = true;
            break;
        }
        match tokio::time::timeout(Duration::from_millis(100), ana.socket.next()).await {
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                closed = true;
                break;
            }
            _ => {}
        }
    }

    assert!(closed, "the socket outlived its maximum duration");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    setup.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_latency_slows_every_post() {
    let setup = Setup::memory_with(LocalConfig {
        faults: Faults {
            latency: Duration::from_millis(200),
            ..Faults::default()
        },
        ..LocalConfig::default()
    })
    .await;
    let mut ana = setup.connect("ana").await;

    let (status, report) = setup.notify(r#"{"users":["ana"],"data":1}"#).await;

    assert_eq!(status, 200);
    assert!(
        report["elapsed_ms"].as_u64().expect("elapsed") >= 200,
        "{report}"
    );
    assert_eq!(ana.next_text().await, "1");
    setup.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_that_are_always_throttled_fail_after_the_retries_and_are_reported() {
    let setup = Setup::memory_with(LocalConfig {
        faults: Faults {
            throttle_rate: 1.0,
            ..Faults::default()
        },
        ..LocalConfig::default()
    })
    .await;
    let mut ana = setup.connect("ana").await;
    let mut bob = setup.connect("bob").await;

    let (status, report) = setup.notify(r#"{"users":["ana","bob"],"data":1}"#).await;

    assert_eq!(status, 502, "an incomplete push is not a success: {report}");
    assert_eq!(report["complete"], false);
    assert_eq!(report["delivered"], 0);
    let failed = report["failed"].as_array().expect("failed");
    assert_eq!(failed.len(), 2);
    assert!(
        failed
            .iter()
            .all(|f| f["reason"]["kind"] == "throttled" && f["attempts"].as_u64() > Some(1)),
        "{report}"
    );
    assert!(
        report["throttled"].as_u64().expect("throttled") >= 4,
        "{report}"
    );
    ana.expect_nothing().await;
    bob.expect_nothing().await;
    setup.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_answered_500_are_retried_and_reported_unavailable() {
    let setup = Setup::memory_with(LocalConfig {
        faults: Faults {
            error_rate: 1.0,
            ..Faults::default()
        },
        ..LocalConfig::default()
    })
    .await;
    let _ana = setup.connect("ana").await;

    let (status, report) = setup.notify(r#"{"users":["ana"],"data":1}"#).await;

    assert_eq!(status, 502);
    assert_eq!(
        report["failed"][0]["reason"]["kind"], "unavailable",
        "{report}"
    );
    assert!(report["retries"].as_u64().expect("retries") >= 1);
    setup.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_connections_count_what_the_management_api_posts_to_them() {
    use wspush_ports::{ConnectionGateway, GatewayError};

    let setup = Setup::memory().await;
    let address = setup.gateway.address();
    let (status, body) = put_virtual_connections(address, br#"{"ids":["v-1","v-2","v-3"]}"#).await;
    assert_eq!(status, 200, "{body}");
    let gateway = setup.gateway.api_gateway();
    let id = |id: &str| ConnectionId::parse(id).expect("valid");

    gateway
        .post(&id("v-1"), "one".into())
        .await
        .expect("posted");
    gateway
        .post(&id("v-2"), "two".into())
        .await
        .expect("posted");
    gateway
        .post(&id("v-2"), "again".into())
        .await
        .expect("posted");
    gateway.delete(&id("v-3")).await.expect("deleted");
    let after_delete = gateway.post(&id("v-3"), "late".into()).await;

    assert!(
        matches!(after_delete, Err(GatewayError::Gone)),
        "{after_delete:?}"
    );
    let (status, body) = http(address, "GET", "/_local/virtual-connections", b"").await;
    assert_eq!(status, 200);
    let tally: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        tally,
        serde_json::json!({
            "connections": 2, "messages": 3, "unreached": 0, "exactly_once": 1, "more_than_once": 1
        })
    );
    assert_eq!(setup.gateway.virtual_tally().messages, 3);
    setup.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_connection_ids_are_validated() {
    let setup = Setup::memory().await;
    let address = setup.gateway.address();

    let (status, body) = put_virtual_connections(address, br#"{"ids":["fine","not fine"]}"#).await;
    assert_eq!(status, 400);
    assert!(body.contains("ids[1]"), "{body}");
    let (status, body) = put_virtual_connections(address, br#"{"ids":["a"],"extra":1}"#).await;
    assert_eq!(status, 400);
    assert!(body.contains("extra"), "{body}");
    assert_eq!(setup.gateway.virtual_tally().connections, 0);
    setup.finish().await;
}

/// `PUT /_local/virtual-connections` with `body`.
async fn put_virtual_connections(address: std::net::SocketAddr, body: &[u8]) -> (u16, String) {
    http(address, "PUT", "/_local/virtual-connections", body).await
}

/// Waits for the close frame the gateway sends, and returns its code.
async fn close_code(client: &mut crate::helpers::Client) -> CloseCode {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), client.socket.next())
            .await
            .expect("closed within 5 s");
        match frame {
            Some(Ok(Message::Close(Some(close)))) => return close.code,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_frame_over_32_kb_or_a_message_over_128_kb_closes_the_socket_with_1009() {
    let setup = Setup::memory().await;
    let subscribe = |padding: usize| {
        format!(
            r#"{{"action":"subscribe","topics":["room:1"],"pad":"{}"}}"#,
            "x".repeat(padding)
        )
    };

    // Just under the frame limit: handled (the policy refuses the unknown field, in words).
    let mut fits = setup.connect("ana").await;
    fits.send(&subscribe(32 * 1024 - 100)).await;
    let reply = fits.next_json().await;
    assert_eq!(reply["ok"], false, "{reply}");

    // One frame over 32 KB.
    let mut big_frame = setup.connect("bob").await;
    big_frame.send(&subscribe(33 * 1024)).await;
    assert_eq!(close_code(&mut big_frame).await, CloseCode::Size);

    // A message over 128 KB in frames of 16 KB each.
    let mut big_message = setup.connect("cy").await;
    let text = subscribe(130 * 1024);
    let chunks: Vec<&[u8]> = text.as_bytes().chunks(16 * 1024).collect();
    for (index, chunk) in chunks.iter().enumerate() {
        let kind = match index {
            0 => Data::Text,
            _ => Data::Continue,
        };
        let frame = Frame::message(
            bytes::Bytes::copy_from_slice(chunk),
            OpCode::Data(kind),
            index == chunks.len() - 1,
        );
        if big_message
            .socket
            .send(Message::Frame(frame))
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(close_code(&mut big_message).await, CloseCode::Size);

    // The others are untouched.
    fits.send(r#"{"action":"subscribe","topics":["room:1"]}"#)
        .await;
    assert_eq!(fits.next_json().await["ok"], true);
    setup.finish().await;
}
