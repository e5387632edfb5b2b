//! The `wspush` binary as a user runs it: against moto's SQS, a local gateway, and
//! DynamoDB Local.

use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use wspush_domain::{Connection, ConnectionId, UserId};
use wspush_integration_tests::dynamodb_local::DynamoDbFixture;
use wspush_integration_tests::moto;
use wspush_local::{LocalConfig, RunningGateway, StoreChoice};
use wspush_ports::{Clock, ConnectionStore};

/// Runs `wspush` with `args` and an environment of throwaway AWS settings.
async fn wspush(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_wspush"));
    command
        .args(args)
        .env_remove("WSPUSH_TABLE")
        .env_remove("WSPUSH_QUEUE_URL")
        .env_remove("WSPUSH_LOCAL_URL")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().await.expect("wspush runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn gateway(store: StoreChoice) -> RunningGateway {
    wspush_local::start(LocalConfig {
        store,
        ..LocalConfig::default()
    })
    .await
    .expect("gateway")
}

async fn open_socket(
    gateway: &RunningGateway,
    user: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let before = gateway.open_connections().len();
    let (socket, _) =
        tokio_tungstenite::connect_async(format!("{}?user={user}", gateway.websocket_url()))
            .await
            .expect("socket");
    for _ in 0..250 {
        if gateway.open_connections().len() > before {
            return socket;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the socket was never registered");
}

async fn next_text(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> String {
    match tokio::time::timeout(Duration::from_secs(5), socket.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => text.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_via_local_delivers_to_a_users_socket_and_prints_the_report() {
    let gateway = gateway(StoreChoice::Memory).await;
    let mut socket = open_socket(&gateway, "ana").await;
    let local = format!("http://{}", gateway.address());

    let output = wspush(
        &[
            "notify",
            "--users",
            "ana,bob",
            "--data",
            r#"{"text":"hi"}"#,
            "--local-url",
            &local,
            "--json",
        ],
        &[],
    )
    .await;

    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value =
        serde_json::from_str(stdout(&output).trim()).expect("JSON report");
    assert_eq!(report["delivered"], 1);
    assert_eq!(next_text(&mut socket).await, r#"{"text":"hi"}"#);
    gateway.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_via_sqs_then_the_pusher_delivers_to_the_socket() {
    let gateway = gateway(StoreChoice::Memory).await;
    let mut socket = open_socket(&gateway, "u-7").await;
    let sdk = moto::sdk_config();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue_url = moto::new_queue(&sqs, "cli").await;
    let moto_endpoint = moto::endpoint();

    let output = wspush(
        &[
            "notify",
            "--via",
            "sqs",
            "--queue-url",
            &queue_url,
            "--users",
            "u-7",
            "--data",
            r#"{"n":7}"#,
        ],
        &[("AWS_ENDPOINT_URL_SQS", &moto_endpoint)],
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with("published: "),
        "{}",
        stdout(&output)
    );

    // The event source mapping's part: receive and hand the batch to the pusher handler.
    let received = sqs
        .receive_message()
        .queue_url(&queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive");
    assert_eq!(received.messages().len(), 1);
    let pusher = wspush_ports::PushService::new(
        gateway.store(),
        Arc::new(gateway.api_gateway()),
        Arc::new(wspush_adapters::SystemClock),
        wspush_ports::PushConfig::default(),
    )
    .expect("config");
    let answer = wspush_handlers::handle_invocation(
        &wspush_integration_tests::moto::sqs_event(received.messages()),
        &pusher,
        None,
    )
    .await
    .expect("handled");

    assert_eq!(answer, serde_json::json!({"batchItemFailures": []}));
    assert_eq!(next_text(&mut socket).await, r#"{"n":7}"#);
    gateway.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn invalid_input_exits_2_naming_the_problem() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["notify", "--users", "u", "--data", "1", "--bogus"],
            "unexpected argument '--bogus'",
        ),
        (
            &["notify", "--users", "ok,bad user", "--data", "1"],
            "--users[1]: user ID must not contain ' '",
        ),
        (
            &["notify", "--users", "u", "--data", "not json"],
            "--data is not JSON",
        ),
        (&["notify", "--data", "1"], "no audience"),
        (
            &["notify", "--via", "sqs", "--users", "u", "--data", "1"],
            "--via sqs needs --queue-url",
        ),
    ];

    for (args, expected) in cases {
        let output = wspush(args, &[]).await;

        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[tokio::test]
async fn a_local_gateway_that_is_not_running_is_a_clear_failure() {
    let port = wspush_integration_tests::local_process::free_port().expect("port");

    let output = wspush(
        &[
            "notify",
            "--broadcast",
            "--data",
            "1",
            "--local-url",
            &format!("http://127.0.0.1:{port}"),
        ],
        &[],
    )
    .await;

    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("is `cargo run -p wspush-local` running?"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_count_list_and_prune_work_on_dynamodb() {
    let dynamodb = DynamoDbFixture::new().await;
    let table = dynamodb.store.table().to_owned();
    let gateway = gateway(StoreChoice::DynamoDb {
        endpoint: dynamodb.endpoint.clone(),
        table: table.clone(),
    })
    .await;
    let _live = open_socket(&gateway, "ana").await;
    let now = wspush_adapters::SystemClock.now();
    for stale in ["staleAAAAAAAAAA=", "staleBBBBBBBBBB="] {
        dynamodb
            .store
            .save(&Connection::open(
                ConnectionId::parse(stale).expect("valid"),
                UserId::parse("ghost").expect("valid"),
                now,
            ))
            .await
            .expect("save");
    }
    let env = [("AWS_ENDPOINT_URL_DYNAMODB", dynamodb.endpoint.as_str())];

    let count = wspush(&["connections", "count", "--table", &table], &env).await;
    let list = wspush(&["connections", "list", "--table", &table, "--json"], &env).await;
    let endpoint = gateway.management_endpoint();
    let prune = wspush(
        &[
            "connections",
            "prune",
            "--table",
            &table,
            "--management-endpoint",
            &endpoint,
            "--json",
        ],
        &env,
    )
    .await;
    let after = wspush(&["connections", "count", "--table", &table], &env).await;

    assert_eq!(stdout(&count).trim(), "3", "{}", stderr(&count));
    assert_eq!(stdout(&list).lines().count(), 3, "{}", stderr(&list));
    assert!(stdout(&list).contains("\"ghost\""));
    let pruned: serde_json::Value = serde_json::from_str(stdout(&prune).trim()).expect("JSON");
    assert_eq!(
        pruned,
        serde_json::json!({"checked": 3, "gone": 2, "deleted": true})
    );
    assert_eq!(stdout(&after).trim(), "1");
    gateway.shutdown().await.expect("shutdown");
    dynamodb.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_development_token_opens_a_socket_on_a_gateway_with_the_same_secret() {
    use wspush_handlers::token::{DEFAULT_MAX_TOKEN_LIFETIME, TokenRules, TokenVerifier};

    const SECRET: &str = "cli-secret-cli-secret-cli-secret-!!";
    let env = [
        ("WSPUSH_JWT_HS256_SECRET", SECRET),
        ("WSPUSH_JWT_ISSUER", "local"),
        ("WSPUSH_JWT_AUDIENCE", "wspush"),
    ];
    let rules = TokenRules {
        issuer: "local".into(),
        audience: "wspush".into(),
        topics_claim: Some("topics".into()),
        leeway: Duration::from_secs(5),
        max_lifetime: DEFAULT_MAX_TOKEN_LIFETIME,
    };
    let gateway = wspush_local::start(LocalConfig {
        token: Some(Arc::new(
            TokenVerifier::hs256(SECRET.as_bytes(), rules).expect("key"),
        )),
        ..LocalConfig::default()
    })
    .await
    .expect("gateway");

    let minted = wspush(&["token", "--sub", "u-1", "--topics", "room:*"], &env).await;
    assert_eq!(minted.status.code(), Some(0), "{}", stderr(&minted));
    let token = stdout(&minted).trim().to_owned();
    let url = format!("{}?token={token}", gateway.websocket_url());
    let (_socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("the token opens a socket");
    let bad_sub = wspush(&["token", "--sub", "has space"], &env).await;
    let bad_topic = wspush(&["token", "--sub", "u", "--topics", "ro*m"], &env).await;
    let short = wspush(&["token", "--sub", "u", "--secret", "short"], &env).await;

    for (output, words) in [
        (&bad_sub, "--sub: user ID must not contain ' '"),
        (&bad_topic, "--topics: grant 0: `*` is only allowed"),
        (&short, "--secret must be at least 32 bytes"),
    ] {
        assert_eq!(output.status.code(), Some(2), "{}", stderr(output));
        assert!(stderr(output).contains(words), "{}", stderr(output));
    }
    gateway.shutdown().await.expect("shutdown");
}

/// The next frame is a close (a backend's disconnect reached the socket).
async fn expect_close(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) {
    match tokio::time::timeout(Duration::from_secs(5), socket.next()).await {
        Ok(Some(Ok(Message::Close(_)))) | Ok(None) => {}
        other => panic!("expected the socket to close, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_occupancy_and_disconnect_act_on_a_users_sockets_through_a_local_gateway() {
    let gateway = gateway(StoreChoice::Memory).await;
    let mut phone = open_socket(&gateway, "ana").await;
    let mut laptop = open_socket(&gateway, "ana").await;
    let local = format!("http://{}", gateway.address());

    let output = wspush(
        &[
            "subscribe",
            "--users",
            "ana",
            "--topics",
            "room:42",
            "--local-url",
            &local,
        ],
        &[],
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).trim(), "subscribe: 2 connections");

    let output = wspush(
        &[
            "occupancy",
            "--topic",
            "room:42",
            "--local-url",
            &local,
            "--json",
        ],
        &[],
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let counted: serde_json::Value = serde_json::from_str(stdout(&output).trim()).expect("JSON");
    assert_eq!(
        counted,
        serde_json::json!({"topic": "room:42", "connections": 2, "users": 1})
    );
    let output = wspush(
        &[
            "notify",
            "--topics",
            "room:42",
            "--data",
            "1",
            "--local-url",
            &local,
        ],
        &[],
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(next_text(&mut phone).await, "1");
    assert_eq!(next_text(&mut laptop).await, "1");

    let output = wspush(
        &["disconnect", "--users", "ana", "--local-url", &local],
        &[],
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output).trim(),
        "disconnect: 2 connections, closed 2, already closed 0"
    );
    expect_close(&mut phone).await;
    expect_close(&mut laptop).await;
    gateway.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnect_via_sqs_closes_the_users_socket_when_the_pusher_runs_it() {
    let gateway = gateway(StoreChoice::Memory).await;
    let mut socket = open_socket(&gateway, "u-9").await;
    let sdk = moto::sdk_config();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue_url = moto::new_queue(&sqs, "cli-control").await;
    let moto_endpoint = moto::endpoint();

    let output = wspush(
        &[
            "disconnect",
            "--via",
            "sqs",
            "--queue-url",
            &queue_url,
            "--users",
            "u-9",
        ],
        &[("AWS_ENDPOINT_URL_SQS", &moto_endpoint)],
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));

    let received = sqs
        .receive_message()
        .queue_url(&queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive");
    assert_eq!(received.messages().len(), 1);
    assert_eq!(
        received.messages()[0].body(),
        Some(r#"{"action":"disconnect","users":["u-9"]}"#)
    );
    let pusher = wspush_ports::PushService::new(
        gateway.store(),
        Arc::new(gateway.api_gateway()),
        Arc::new(wspush_adapters::SystemClock),
        wspush_ports::PushConfig::default(),
    )
    .expect("config");
    let answer =
        wspush_handlers::handle_invocation(&moto::sqs_event(received.messages()), &pusher, None)
            .await
            .expect("handled");
    assert_eq!(answer, serde_json::json!({"batchItemFailures": []}));
    expect_close(&mut socket).await;
    gateway.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_control_command_without_targets_or_topics_exits_2_naming_the_field() {
    for (args, expected) in [
        (
            &["disconnect"][..],
            "field `users` (or `connections`) must name",
        ),
        (
            &["subscribe", "--users", "ana"][..],
            "field `topics` must name",
        ),
        (
            &["unsubscribe", "--users", "a na", "--topics", "t:1"][..],
            "--users[0]",
        ),
        (&["occupancy", "--topic", "room:1"][..], "name the store"),
    ] {
        let output = wspush(args, &[]).await;
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}
