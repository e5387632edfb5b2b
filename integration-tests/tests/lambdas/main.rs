//! The deployable functions end to end: the local gateway runs the four `bootstrap` binaries
//! that `sam build` leaves in `deploy/.aws-sam/build` (or those in `WSPUSH_LAMBDAS_DIR`, a
//! `sam build` or `cargo lambda build` output) as child processes under its own Lambda Runtime
//! API, with the environment `deploy/template.yaml` gives them, on DynamoDB Local; real
//! WebSocket clients connect, subscribe and receive pushes through them.
//!
//! Also: a template whose variable was renamed fails the start naming it; a function that
//! fails to start, crashes, fails or times out is reported (the caller gets API Gateway's
//! "Internal server error") and replaced, shown with a stand-in `bootstrap`
//! (`fake_bootstrap.py`).
//!
//! Without the binaries the suite fails, saying how to build them: `bash .ci/test` does.

mod faults;
#[path = "../e2e/helpers.rs"]
#[allow(dead_code)]
mod helpers;
mod queue;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use tokio_tungstenite::connect_async;
use wspush_adapters::SystemClock;
use wspush_domain::ConnectionId;
use wspush_handlers::token::{DEFAULT_MAX_TOKEN_LIFETIME, TokenRules, TokenVerifier};
use wspush_integration_tests::dynamodb_local::DynamoDbFixture;
use wspush_integration_tests::local_process::repository_root;
use wspush_local::{Faults, FunctionsConfig, LocalConfig, SqsEndpoint, StoreChoice, start};
use wspush_ports::{Clock, ConnectionStore};

use crate::helpers::{Setup, wait_for};

/// The variable that points the suite at the functions' binaries.
const DIR_VAR: &str = "WSPUSH_LAMBDAS_DIR";
const FUNCTIONS: [&str; 4] = [
    "ConnectFunction",
    "DisconnectFunction",
    "SubscribeFunction",
    "PusherFunction",
];

/// Where the built functions are: [`DIR_VAR`], else `deploy/.aws-sam/build`.
fn lambdas_dir() -> PathBuf {
    let dir = std::env::var_os(DIR_VAR).map_or_else(
        || repository_root().join("deploy/.aws-sam/build"),
        PathBuf::from,
    );
    let built = |function: &str, binary: &str| {
        dir.join(function).join("bootstrap").is_file()
            || dir.join(binary).join("bootstrap").is_file()
    };
    for (function, binary) in FUNCTIONS
        .iter()
        .zip(["connect", "disconnect", "subscribe", "pusher"])
    {
        assert!(
            built(function, binary),
            "{function}'s bootstrap is not in {}: run `sam build` in deploy/ (bash .ci/test does), \
             or set {DIR_VAR} to a `cargo lambda build` output (target/lambda)",
            dir.display()
        );
    }
    dir
}

fn template() -> PathBuf {
    repository_root().join("deploy/template.yaml")
}

/// The gateway running the built functions on a fresh table, with `parameters` and the
/// rest of `config`.
async fn deployed(parameters: &[(&str, &str)], config: LocalConfig) -> Setup {
    deployed_from(lambdas_dir(), template(), parameters, config, None)
        .await
        .unwrap_or_else(|error| panic!("the gateway starts the functions: {error:#}"))
}

async fn deployed_from(
    dir: PathBuf,
    template: PathBuf,
    parameters: &[(&str, &str)],
    config: LocalConfig,
    sqs: Option<SqsEndpoint>,
) -> anyhow::Result<Setup> {
    let fixture = DynamoDbFixture::new().await;
    let config = LocalConfig {
        store: StoreChoice::DynamoDb {
            endpoint: fixture.endpoint.clone(),
            table: fixture.store.table().to_owned(),
        },
        functions: Some(FunctionsConfig {
            dir,
            template,
            parameters: parameters
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            sqs,
        }),
        ..config
    };
    match start(config).await {
        Ok(gateway) => Ok(Setup::around(gateway, Some(fixture))),
        Err(error) => {
            fixture.finish().await;
            Err(error)
        }
    }
}

/// Prints each function's cold starts (BENCHMARKS.md quotes them).
fn report_cold_starts(setup: &Setup, scenario: &str) {
    let cold_starts = setup.gateway.cold_starts().expect("the functions run");
    for (function, starts) in cold_starts {
        let millis: Vec<u128> = starts.iter().map(Duration::as_millis).collect();
        eprintln!("cold start ({scenario}): {function} {millis:?} ms");
    }
}

fn succeeded(status: u16, answer: &Value) {
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["function"], "PusherFunction", "{answer}");
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multicast_topic_and_broadcast_with_an_excluded_user_reach_exactly_their_audiences() {
    let setup = deployed(&[], LocalConfig::default()).await;
    let mut ana = setup.connect("ana").await;
    let mut ana_tab = setup.connect("ana").await;
    let mut bob = setup.connect("bob").await;
    let mut cy = setup.connect("cy").await;
    bob.subscribe(&["room:1"]).await;

    let (status, answer) = setup
        .notify(r#"{"users":["ana"],"data":{"text":"hi ana"}}"#)
        .await;
    succeeded(status, &answer);
    assert_eq!(ana.next_json().await, json!({"text": "hi ana"}));
    assert_eq!(ana_tab.next_json().await, json!({"text": "hi ana"}));

    let (status, answer) = setup
        .notify(r#"{"topics":["room:1"],"data":"room one"}"#)
        .await;
    succeeded(status, &answer);
    assert_eq!(bob.next_text().await, r#""room one""#);

    let (status, answer) = setup
        .notify(r#"{"broadcast":true,"exclude_users":["ana"],"data":"all but ana"}"#)
        .await;
    succeeded(status, &answer);
    assert_eq!(bob.next_text().await, r#""all but ana""#);
    assert_eq!(cy.next_text().await, r#""all but ana""#);
    ana.expect_nothing().await;
    ana_tab.expect_nothing().await;
    cy.expect_nothing().await;

    // Refused by the gateway as the pusher would refuse it, naming the field.
    let (status, answer) = setup.notify(r#"{"user":["ana"],"data":1}"#).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["field"], "user", "{answer}");
    report_cold_starts(&setup, "multicast");
    setup.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_socket_is_pruned_by_the_pusher_and_a_closed_one_by_disconnect() {
    let lossy = LocalConfig {
        faults: Faults {
            lose_disconnects: true,
            ..Faults::default()
        },
        ..LocalConfig::default()
    };
    let setup = deployed(&[], lossy).await;
    let store = setup.dynamodb_store().expect("DynamoDB");
    let id = |client: &helpers::Client| ConnectionId::parse(client.id.as_str()).expect("an ID");
    let vanished = setup.connect("ana").await;
    let vanished_id = id(&vanished);
    drop(vanished);
    // The gateway lost its $disconnect: the connect function's record is still there.
    wait_for(|| setup.gateway.open_connections().is_empty().then_some(())).await;
    let still = store
        .get(&vanished_id, SystemClock.now())
        .await
        .expect("read");
    assert!(
        still.is_some(),
        "the connect function stored the connection"
    );

    let (status, answer) = setup.notify(r#"{"users":["ana"],"data":"anyone?"}"#).await;
    succeeded(status, &answer);
    let gone = store
        .get(&vanished_id, SystemClock.now())
        .await
        .expect("read");
    assert!(
        gone.is_none(),
        "the pusher pruned the connection its post found gone"
    );
    setup.finish().await;

    // With $disconnect delivered, the disconnect function removes the record.
    let setup = deployed(&[], LocalConfig::default()).await;
    let store = setup.dynamodb_store().expect("DynamoDB");
    let closing = setup.connect("bob").await;
    let closing_id = id(&closing);
    assert!(
        store
            .get(&closing_id, SystemClock.now())
            .await
            .expect("read")
            .is_some()
    );
    drop(closing);
    let mut removed = false;
    for _ in 0..100 {
        if store
            .get(&closing_id, SystemClock.now())
            .await
            .expect("read")
            .is_none()
        {
            removed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(removed, "the disconnect function removed the connection");
    setup.finish().await;
}

const SECRET: &[u8] = b"a-test-secret-of-at-least-32-bytes!!";

fn token(subject: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": subject, "iss": "local", "aud": "wspush", "exp": now + 600}),
        &EncodingKey::from_secret(SECRET),
    )
    .expect("sign")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connect_function_refuses_a_missing_or_bad_token_and_subscribe_applies_the_policy() {
    let rules = TokenRules {
        issuer: "local".into(),
        audience: "wspush".into(),
        topics_claim: None,
        leeway: Duration::from_secs(30),
        max_lifetime: DEFAULT_MAX_TOKEN_LIFETIME,
    };
    let secret = std::str::from_utf8(SECRET).expect("text");
    let config = LocalConfig {
        // The gateway then leaves identity to the connect function, as API Gateway does.
        token: Some(Arc::new(TokenVerifier::hs256(SECRET, rules).expect("key"))),
        ..LocalConfig::default()
    };
    let setup = deployed(
        &[
            ("JwtHs256Secret", secret),
            ("JwtIssuer", "local"),
            ("JwtAudience", "wspush"),
            ("JwtTopicsClaim", "off"),
            ("AllowedTopicNamespaces", "room"),
        ],
        config,
    )
    .await;
    let url = setup.gateway.websocket_url();
    for refused in [
        url.clone(),
        format!("{url}?token=not-a-jwt"),
        format!("{url}?user=ana"),
    ] {
        let result = connect_async(refused.as_str()).await;
        let Err(tokio_tungstenite::tungstenite::Error::Http(response)) = result else {
            panic!("{refused}: expected an HTTP refusal, got {result:?}");
        };
        assert_eq!(response.status(), 401, "{refused}");
    }
    let mut ana = setup.open(format!("{url}?token={}", token("ana"))).await;

    ana.send(r#"{"action":"subscribe","topics":["ticker:AAPL"]}"#)
        .await;
    let denied = ana.next_json().await;
    assert_eq!(denied["ok"], false, "{denied}");
    assert!(
        denied["error"]
            .as_str()
            .is_some_and(|error| error.contains("ticker")),
        "{denied}"
    );
    ana.subscribe(&["room:7"]).await;
    let (status, answer) = setup.notify(r#"{"topics":["room:7"],"data":"in"}"#).await;
    succeeded(status, &answer);
    assert_eq!(ana.next_text().await, r#""in""#);
    setup.finish().await;
}

/// A copy of the template with `from` replaced by `to` (once, and it must be there), in a
/// temporary directory: the directory and the copy.
fn edited_template(from: &str, to: &str) -> (PathBuf, PathBuf) {
    edited_template_with(&[(from, to)])
}

/// A copy of the template with each edit made, as [`edited_template`].
fn edited_template_with(edits: &[(&str, &str)]) -> (PathBuf, PathBuf) {
    let mut text = std::fs::read_to_string(template()).expect("the template");
    for (from, to) in edits {
        assert_eq!(
            text.matches(from).count(),
            1,
            "{from:?} is in the template once"
        );
        text = text.replace(from, to);
    }
    let dir = std::env::temp_dir().join(format!("wspush-lambdas-{}", fastrand::u64(..)));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let path = dir.join("template.yaml");
    std::fs::write(&path, text).expect("write the copy");
    (dir, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_variable_renamed_on_one_side_fails_the_start_naming_it() {
    let (dir, path) = edited_template(
        "WSPUSH_MAX_TOPICS_PER_MESSAGE: !Ref MaxTopicsPerMessage",
        "WSPUSH_MAX_TOPICS_PER_MSG: !Ref MaxTopicsPerMessage",
    );
    let error = deployed_from(
        lambdas_dir(),
        path.clone(),
        &[],
        LocalConfig::default(),
        None,
    )
    .await
    .err()
    .expect("the start fails");
    let error = format!("{error:#}");
    assert!(
        error.contains("SubscribeFunction")
            && error.contains("WSPUSH_MAX_TOPICS_PER_MSG")
            && error.contains("no wspush function reads"),
        "{error}"
    );

    // A variable the code requires, set to nothing in the Globals: named too, for the first
    // function that does not set it itself.
    let (other, path) = edited_template(
        "        WSPUSH_TABLE: !Ref ConnectionsTable\n\nResources:",
        "        WSPUSH_TABLE: \"\"\n\nResources:",
    );
    let error = deployed_from(lambdas_dir(), path, &[], LocalConfig::default(), None)
        .await
        .err()
        .expect("the start fails");
    let error = format!("{error:#}");
    assert!(
        error.contains("DisconnectFunction") && error.contains("WSPUSH_TABLE is not set"),
        "{error}"
    );
    for dir in [dir, other] {
        std::fs::remove_dir_all(dir).expect("remove the copies");
    }
}

/// The built functions with `fake_bootstrap.py` standing in for the subscribe function, in
/// a temporary directory.
fn with_fake_subscribe() -> PathBuf {
    let built = lambdas_dir();
    let dir = std::env::temp_dir().join(format!("wspush-fake-{}", fastrand::u64(..)));
    for (function, binary) in FUNCTIONS
        .iter()
        .zip(["connect", "disconnect", "subscribe", "pusher"])
    {
        let target = dir.join(function);
        std::fs::create_dir_all(&target).expect("a directory");
        let bootstrap = if *function == "SubscribeFunction" {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lambdas/fake_bootstrap.py")
        } else {
            [built.join(function), built.join(binary)]
                .into_iter()
                .map(|dir| dir.join("bootstrap"))
                .find(|path| path.is_file())
                .expect("checked by lambdas_dir")
        };
        std::os::unix::fs::symlink(&bootstrap, target.join("bootstrap")).expect("link");
    }
    dir
}
