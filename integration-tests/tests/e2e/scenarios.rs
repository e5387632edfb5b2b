use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;
use wspush_adapters::{SystemClock, Transport};
use wspush_domain::ConnectionId;
use wspush_local::{Faults, LocalConfig};
use wspush_ports::{Clock, ConnectionGateway, GatewayError, PushConfig};

use crate::helpers::{Client, Setup, http, wait_for};

fn id(value: &str) -> ConnectionId {
    ConnectionId::parse(value).expect("valid")
}

async fn stored(setup: &Setup, connection: &str) -> bool {
    setup
        .gateway
        .store()
        .get(&id(connection), SystemClock.now())
        .await
        .expect("store read")
        .is_some()
}

pub async fn a_socket_without_identity_is_refused_with_401(setup: &Setup) {
    let result = connect_async(setup.gateway.websocket_url()).await;

    let Err(tokio_tungstenite::tungstenite::Error::Http(response)) = result else {
        panic!("expected an HTTP refusal, got {result:?}");
    };
    assert_eq!(response.status(), 401);
    assert!(setup.gateway.open_connections().is_empty());
}

pub async fn subscribe_and_unsubscribe_reply_and_a_bad_body_gets_an_error_reply(setup: &Setup) {
    let mut ana = setup.connect("ana").await;

    ana.send(r#"{"action":"subscribe","topics":["room:1","room:2"]}"#)
        .await;
    let subscribed = ana.next_json().await;
    ana.send(r#"{"action":"unsubscribe","topics":["room:1"]}"#)
        .await;
    let unsubscribed = ana.next_json().await;
    ana.send(r#"{"action":"subscribe","topics":"room:3"}"#)
        .await;
    let bad = ana.next_json().await;
    ana.send(r#"{"action":"subscribe","topics":["user:bob"]}"#)
        .await;
    let denied = ana.next_json().await;

    assert_eq!(
        subscribed,
        json!({"ok": true, "action": "subscribe", "topics": ["room:1", "room:2"]})
    );
    assert_eq!(unsubscribed["ok"], true);
    assert_eq!(bad["ok"], false);
    assert!(
        bad["error"]
            .as_str()
            .expect("error")
            .contains("invalid type"),
        "{bad}"
    );
    assert_eq!(
        denied["error"],
        "topic `user:bob` is another user's own channel"
    );
    let (_, report) = setup
        .notify(r#"{"topics":["room:2"],"data":"only room 2"}"#)
        .await;
    assert_eq!(report["delivered"], 1);
    assert_eq!(ana.next_text().await, r#""only room 2""#);
    let (_, report) = setup
        .notify(r#"{"topics":["room:1"],"data":"room 1"}"#)
        .await;
    assert_eq!(report["delivered"], 0);
}

pub async fn a_message_without_a_route_gets_api_gateways_forbidden_reply(setup: &Setup) {
    let mut ana = setup.connect("ana").await;

    ana.send(r#"{"action":"dance"}"#).await;
    let reply = ana.next_json().await;

    assert_eq!(reply["message"], "Forbidden");
    assert_eq!(reply["connectionId"], ana.id.as_str());
}

/// The heartbeat route is answered by the gateway itself (a mock integration on AWS).
pub async fn a_ping_is_answered_with_a_pong(setup: &Setup) {
    let mut ana = setup.connect("ana").await;

    ana.send(r#"{"action":"ping"}"#).await;

    assert_eq!(ana.next_json().await, serde_json::json!({"action": "pong"}));
}

pub async fn a_multicast_reaches_every_connection_of_each_user(setup: &Setup) {
    let mut ana_phone = setup.connect("ana").await;
    let mut ana_laptop = setup.connect("ana").await;
    let mut bob = setup.connect("bob").await;
    let mut cy = setup.connect("cy").await;

    let (status, report) = setup
        .notify(r#"{"users":["ana","bob"],"data":{"type":"notification","text":"hi"}}"#)
        .await;

    assert_eq!(status, 200, "{report}");
    assert_eq!(report["delivered"], 3);
    for client in [&mut ana_phone, &mut ana_laptop, &mut bob] {
        assert_eq!(
            client.next_text().await,
            r#"{"type":"notification","text":"hi"}"#
        );
    }
    cy.expect_nothing().await;
}

pub async fn a_topic_push_reaches_only_its_subscribers(setup: &Setup) {
    let mut member = setup.connect("ana").await;
    let mut outsider = setup.connect("bob").await;
    member.subscribe(&["ticker:AAPL"]).await;

    let (_, report) = setup
        .notify(r#"{"topics":["ticker:AAPL"],"data":{"price":187.5}}"#)
        .await;

    assert_eq!(report["delivered"], 1);
    assert_eq!(member.next_text().await, r#"{"price":187.5}"#);
    outsider.expect_nothing().await;
}

pub async fn a_broadcast_reaches_everyone(setup: &Setup) {
    let mut clients = Vec::new();
    for user in ["a", "b", "c", "d", "e"] {
        clients.push(setup.connect(user).await);
    }

    let (_, report) = setup.notify(r#"{"data":{"type":"announcement"}}"#).await;

    assert_eq!(report["delivered"], 5);
    for client in &mut clients {
        assert_eq!(client.next_text().await, r#"{"type":"announcement"}"#);
    }
}

pub async fn an_empty_recipient_list_reaches_nobody_and_broadcast_true_reaches_everyone(
    setup: &Setup,
) {
    let mut ana = setup.connect("ana").await;
    let mut bob = setup.connect("bob").await;

    for request in [
        r#"{"users":[],"data":"secret"}"#,
        r#"{"users":null,"data":"secret"}"#,
        r#"{"users":[],"topics":[],"connections":[],"data":"secret"}"#,
    ] {
        let (status, report) = setup.notify(request).await;
        assert_eq!(status, 200, "{request}: {report}");
        assert_eq!(report["delivered"], 0, "{request}: {report}");
        assert_eq!(report["outcome"], "complete", "{request}: {report}");
    }
    ana.expect_nothing().await;
    bob.expect_nothing().await;

    let (_, report) = setup
        .notify(r#"{"broadcast":true,"data":"everyone"}"#)
        .await;
    assert_eq!(report["delivered"], 2, "{report}");
    for client in [&mut ana, &mut bob] {
        assert_eq!(client.next_text().await, r#""everyone""#);
    }
}

pub async fn a_broadcast_excluding_users_skips_all_their_connections(setup: &Setup) {
    let mut ana_1 = setup.connect("ana").await;
    let mut ana_2 = setup.connect("ana").await;
    let mut bob = setup.connect("bob").await;
    let mut cy = setup.connect("cy").await;

    let (_, report) = setup
        .notify(r#"{"exclude_users":["ana","cy"],"data":{"user_id":"ana","status":"OFFLINE"}}"#)
        .await;

    assert_eq!(report["delivered"], 1);
    assert_eq!(report["excluded"], 3);
    assert_eq!(
        bob.next_text().await,
        r#"{"user_id":"ana","status":"OFFLINE"}"#
    );
    for client in [&mut ana_1, &mut ana_2, &mut cy] {
        client.expect_nothing().await;
    }
}

pub async fn excluding_the_senders_connection_skips_only_that_tab(setup: &Setup) {
    let mut sender = setup.connect("ana").await;
    let mut other_tab = setup.connect("ana").await;
    let mut bob = setup.connect("bob").await;
    for client in [&mut sender, &mut other_tab, &mut bob] {
        client.subscribe(&["room:42"]).await;
    }

    let request =
        json!({"topics": ["room:42"], "exclude_connections": [sender.id], "data": "typing"});
    let (_, report) = setup.notify(&request.to_string()).await;

    assert_eq!(report["delivered"], 2);
    assert_eq!(other_tab.next_text().await, r#""typing""#);
    assert_eq!(bob.next_text().await, r#""typing""#);
    sender.expect_nothing().await;
}

pub async fn a_user_reached_by_user_and_topic_gets_the_push_once(setup: &Setup) {
    let mut ana = setup.connect("ana").await;
    ana.subscribe(&["room:1", "room:2"]).await;

    let (_, report) = setup
        .notify(r#"{"users":["ana"],"topics":["room:1","room:2"],"data":1}"#)
        .await;

    assert_eq!(report["delivered"], 1);
    assert_eq!(report["duplicates"], 2);
    assert_eq!(ana.next_text().await, "1");
    ana.expect_nothing().await;
}

pub async fn a_client_that_vanishes_without_a_close_frame_is_pruned_on_the_next_push(
    setup: &Setup,
) {
    let lossy = setup
        .sibling(Faults {
            lose_disconnects: true,
            ..Faults::default()
        })
        .await;
    let ghost = lossy.connect("ana").await;
    let mut alive = lossy.connect("ana").await;
    let ghost_id = ghost.id.clone();

    drop(ghost); // the TCP connection ends with no close frame
    wait_for(|| (!lossy.gateway.open_connections().contains(&ghost_id)).then_some(()))
        .await
        .expect("the gateway notices the socket is gone");
    let still_stored = stored(&lossy, &ghost_id).await;
    let (_, report) = lossy.notify(r#"{"users":["ana"],"data":"ping"}"#).await;

    assert!(still_stored, "no $disconnect reached the store");
    assert_eq!(report["pruned"], 1, "{report}");
    assert_eq!(report["delivered"], 1);
    assert_eq!(report["complete"], true);
    assert_eq!(alive.next_text().await, r#""ping""#);
    assert!(!stored(&lossy, &ghost_id).await, "the 410 pruned it");
    lossy.finish().await;
}

pub async fn a_server_side_delete_closes_the_socket_and_fires_disconnect(setup: &Setup) {
    let mut ana = setup.connect("ana").await;
    ana.subscribe(&["room:1"]).await;
    let gateway = setup.gateway.api_gateway();

    gateway.delete(&id(&ana.id)).await.expect("deleted");
    let frame = tokio::time::timeout(Duration::from_secs(5), ana.socket.next())
        .await
        .expect("a frame within 5 s");

    assert!(matches!(frame, Some(Ok(Message::Close(_)))), "{frame:?}");
    let gone =
        wait_for(|| (!setup.gateway.open_connections().contains(&ana.id)).then_some(())).await;
    assert!(gone.is_some());
    for _ in 0..50 {
        if !stored(setup, &ana.id).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !stored(setup, &ana.id).await,
        "$disconnect removed it from the store"
    );
    assert!(matches!(
        gateway.delete(&id(&ana.id)).await,
        Err(GatewayError::Gone)
    ));
}

pub async fn closing_the_socket_fires_disconnect_and_cleans_the_store(setup: &Setup) {
    let mut ana = setup.connect("ana").await;
    ana.subscribe(&["room:9"]).await;
    let connection = ana.id.clone();
    assert!(stored(setup, &connection).await);

    ana.socket.close(None).await.expect("close");
    // The store removes the connection item first, then its subscriptions: wait for the
    // `$disconnect` to finish both.
    let mut removed = false;
    let mut subscriptions = Vec::new();
    for _ in 0..100 {
        subscriptions = setup
            .gateway
            .store()
            .subscriptions(&id(&connection))
            .await
            .expect("read");
        if !stored(setup, &connection).await && subscriptions.is_empty() {
            removed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    assert!(
        removed,
        "still stored, or still subscribed to {subscriptions:?}"
    );
}

pub async fn the_management_api_answers_like_api_gateway(setup: &Setup) {
    let mut ana = setup.connect("ana").await;
    let path = |connection: &str| format!("/local/@connections/{connection}");

    // Both transports, on a real socket: a post arrives, GetConnection describes the
    // socket, an unknown connection is gone.
    for transport in [Transport::Lean, Transport::Sdk] {
        let gateway = setup.gateway.api_gateway_on(transport);
        gateway
            .post(
                &id(&ana.id),
                bytes::Bytes::from(format!("direct {transport}")),
            )
            .await
            .unwrap_or_else(|error| panic!("{transport}: {error:?}"));
        let info = gateway.get(&id(&ana.id)).await.expect("info");
        let unknown = gateway
            .post(&id("AAAAAAAAAAAAAAA="), bytes::Bytes::from_static(b"x"))
            .await;

        assert_eq!(ana.next_text().await, format!("direct {transport}"));
        assert_eq!(info.source_ip.as_deref(), Some("127.0.0.1"), "{transport}");
        assert!(info.connected_at.unix_millis() > 0, "{transport}: {info:?}");
        assert!(
            matches!(unknown, Err(GatewayError::Gone)),
            "{transport}: {unknown:?}"
        );
    }
    let too_big = vec![b'x'; 128 * 1024 + 1];
    let (status, _) = http(setup.gateway.address(), "POST", &path(&ana.id), &too_big).await;
    assert_eq!(status, 413);
}

pub async fn a_malformed_notification_request_is_rejected_naming_the_field(setup: &Setup) {
    let mut ana = setup.connect("ana").await;

    let (status, answer) = setup.notify(r#"{"user":["ana"],"data":"oops"}"#).await;

    assert_eq!(status, 400);
    assert_eq!(answer["field"], "user");
    ana.expect_nothing().await;
}

/// Sockets, vanished ones, concurrent pushes and posts in flight per push of the
/// prune-once scenario; `WSPUSH_PRUNE_SOAK=600,150,40,64` runs it at the size of the review's
/// soak (the fourth number, default 256, keeps 40 pushes' posts within one process's file
/// descriptors: every post in flight is a socket at both ends).
fn prune_soak_size() -> (usize, usize, usize, usize) {
    let given = std::env::var("WSPUSH_PRUNE_SOAK").ok().map(|text| {
        let numbers: Vec<usize> = text
            .split(',')
            .map(|part| part.trim().parse().expect("WSPUSH_PRUNE_SOAK: numbers"))
            .collect();
        assert!(
            matches!(numbers.len(), 3 | 4),
            "WSPUSH_PRUNE_SOAK: sockets,vanished,pushes[,in flight per push]"
        );
        (
            numbers[0],
            numbers[1],
            numbers[2],
            numbers.get(3).copied().unwrap_or(256),
        )
    });
    given.unwrap_or((120, 30, 8, 256))
}

pub async fn a_gone_connection_found_by_concurrent_pushes_is_pruned_once(setup: &Setup) {
    let (sockets, vanished, pushes, in_flight) = prune_soak_size();
    // Posts take 300-400 ms (longer than the pushes take to start), so that the pushes
    // overlap: most find a vanished connection in their audience before any has pruned it.
    let lossy = setup
        .sibling_with(LocalConfig {
            faults: Faults {
                lose_disconnects: true,
                latency: Duration::from_millis(300),
                jitter: Duration::from_millis(100),
                ..Faults::default()
            },
            push: PushConfig {
                max_in_flight: in_flight,
                ..PushConfig::default()
            },
            ..LocalConfig::default()
        })
        .await;
    let mut clients = Vec::new();
    for index in 0..sockets {
        let mut client = lossy.connect(&format!("u-{index}")).await;
        client.subscribe(&["room:soak"]).await;
        clients.push(client);
    }
    let gone: Vec<Client> = clients.drain(..vanished).collect();
    let gone_ids: Vec<String> = gone.iter().map(|client| client.id.clone()).collect();
    drop(gone); // no close frames, and the gateway loses the $disconnects
    wait_for(|| {
        let open = lossy.gateway.open_connections();
        gone_ids.iter().all(|id| !open.contains(id)).then_some(())
    })
    .await
    .expect("the gateway notices the gone sockets");

    let started = std::time::Instant::now();
    let requests: Vec<String> = (0..pushes)
        .map(|n| format!(r#"{{"topics":["room:soak"],"data":{n}}}"#))
        .collect();
    let reports =
        futures::future::join_all(requests.iter().map(|request| lossy.notify(request))).await;
    let elapsed = started.elapsed();

    let count = |field: &str| -> u64 {
        reports
            .iter()
            .map(|(status, report)| {
                assert_eq!(*status, 200, "{report}");
                report[field].as_u64().unwrap_or(0)
            })
            .sum()
    };
    let (pruned, already, delivered) =
        (count("pruned"), count("already_pruned"), count("delivered"));
    println!(
        "prune once: {sockets} sockets, {vanished} vanished, {pushes} concurrent pushes: \
         pruned {pruned}, already pruned {already}, delivered {delivered}, {} ms",
        elapsed.as_millis()
    );
    assert_eq!(
        pruned, vanished as u64,
        "each vanished connection pruned once"
    );
    assert!(
        already > 0,
        "the pushes overlapped: some found a connection another had just pruned"
    );
    assert_eq!(delivered, ((sockets - vanished) * pushes) as u64);
    assert!(reports.iter().all(|(_, report)| report["complete"] == true));
    for id in &gone_ids {
        assert!(!stored(&lossy, id).await, "{id} is gone from the store");
    }
    lossy.finish().await;
}
