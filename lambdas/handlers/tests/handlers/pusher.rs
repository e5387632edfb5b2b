use wspush_handlers::{handle_invocation, handle_sqs};

use crate::helpers::*;

const SQS_BATCH: &str = include_str!("../fixtures/sqs-batch.json");
const SNS: &str = include_str!("../fixtures/sns.json");

async fn store_for_fixtures() -> std::sync::Arc<wspush_adapters::MemoryStore> {
    let store = store_with(&[
        ("u1-phone", "u-1"),
        ("u1-laptop", "u-1"),
        ("room-member", "u-2"),
    ])
    .await;
    let member = wspush_ports::ConnectionStore::get(&*store, &id("room-member"), NOW)
        .await
        .expect("get")
        .expect("saved");
    wspush_ports::ConnectionStore::subscribe(&*store, &member, &[topic("room:42")], NOW)
        .await
        .expect("subscribe");
    store
}

/// The message IDs an SQS batch response reports failed.
fn failed_ids(answer: &aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<&str> {
    answer
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.as_str())
        .collect()
}

fn recipients(sent: &Sent) -> Vec<(String, String)> {
    let mut sent = sent.lock().expect("lock").clone();
    sent.sort();
    sent
}

#[tokio::test]
async fn an_sqs_batch_reports_only_the_malformed_record_as_failed() {
    let (service, sent) = pusher(store_for_fixtures().await);

    let answer = handle_invocation(SQS_BATCH, &service, None)
        .await
        .expect("handled");

    assert_eq!(
        answer,
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "2e1424d4-f796-459a-8184-9c92662be6da"}]})
    );
    assert_eq!(
        recipients(&sent),
        [
            ("room-member".to_owned(), r#"{"z":1,"a":2}"#.to_owned()),
            (
                "u1-laptop".to_owned(),
                r#"{"type":"notification","text":"hi"}"#.to_owned()
            ),
            (
                "u1-phone".to_owned(),
                r#"{"type":"notification","text":"hi"}"#.to_owned()
            ),
        ]
    );
}

#[tokio::test]
async fn an_sqs_record_whose_push_is_incomplete_is_reported_failed() {
    let store = store_for_fixtures().await;
    let mut gateway = wspush_ports::MockConnectionGateway::new();
    gateway
        .expect_post()
        .returning(|_, _| Err(wspush_ports::GatewayError::PayloadTooLarge));
    let service = wspush_ports::PushService::new(
        store,
        std::sync::Arc::new(gateway),
        clock(),
        wspush_ports::PushConfig::default(),
    )
    .expect("config");
    let event = serde_json::from_str(SQS_BATCH).expect("SQS event");

    let answer = handle_sqs(event, &service, None)
        .await
        .expect("every failed record has a message ID");

    let failed = failed_ids(&answer);
    assert_eq!(failed.len(), 3, "{failed:?}");
}

#[tokio::test]
async fn an_sqs_record_without_a_body_is_reported_failed() {
    let (service, sent) = pusher(store_for_fixtures().await);
    let mut event: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_str(SQS_BATCH).expect("SQS event");
    event.records.truncate(1);
    event.records[0].body = None;

    let answer = handle_sqs(event, &service, None)
        .await
        .expect("every failed record has a message ID");

    assert_eq!(answer.batch_item_failures.len(), 1);
    assert!(sent.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn a_failed_sqs_record_without_a_message_id_fails_the_whole_invocation() {
    let (service, sent) = pusher(store_for_fixtures().await);
    let mut event: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_str(SQS_BATCH).expect("SQS event");
    event.records.truncate(1);
    // `user` is a typo of `users`: the record is malformed, so it fails.
    event.records[0].body = Some(r#"{"user":["u-1"],"data":1}"#.to_owned());
    event.records[0].message_id = None;
    let mut delivered = event.clone();
    delivered.records[0].body = Some(r#"{"users":["u-1"],"data":1}"#.to_owned());

    let result = handle_sqs(event, &service, None).await;
    let answer = handle_sqs(delivered, &service, None).await;

    let error = result.expect_err("the record cannot be named, so the batch fails");
    assert!(matches!(error, wspush_handlers::PusherError::UnnamedRecord));
    assert!(error.to_string().contains("without a messageId"), "{error}");
    let answer = answer.expect("an unnamed record that succeeds needs no name");
    assert!(answer.batch_item_failures.is_empty());
    assert_eq!(sent.lock().expect("lock").len(), 2, "u-1's two connections");
}

#[tokio::test]
async fn an_sns_record_is_pushed_to_its_audience() {
    let (service, sent) = pusher(store_for_fixtures().await);

    let answer = handle_invocation(SNS, &service, None)
        .await
        .expect("handled");

    assert_eq!(answer, serde_json::json!({"pushed": 1}));
    assert_eq!(
        recipients(&sent),
        [
            ("u1-laptop".to_owned(), r#"{"via":"sns"}"#.to_owned()),
            ("u1-phone".to_owned(), r#"{"via":"sns"}"#.to_owned()),
        ]
    );
}

#[tokio::test]
async fn a_malformed_sns_message_fails_the_invocation_naming_the_field() {
    let (service, sent) = pusher(store_for_fixtures().await);
    let malformed = SNS.replace(r#"{\"users\":[\"u-1\"],"#, r#"{\"users\":\"u-1\","#);

    let error = handle_invocation(&malformed, &service, None)
        .await
        .expect_err("malformed");

    assert!(
        error.to_string().contains("field `users` must be an array"),
        "{error}"
    );
    assert!(sent.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn a_direct_invoke_answers_with_the_push_report() {
    let (service, sent) = pusher(store_for_fixtures().await);

    let answer = handle_invocation(
        r#"{"topics":["room:42"],"data":{"k":[1, 2]}}"#,
        &service,
        None,
    )
    .await
    .expect("handled");

    assert_eq!(answer["delivered"], 1);
    assert_eq!(answer["complete"], true);
    assert_eq!(
        recipients(&sent),
        [("room-member".to_owned(), r#"{"k":[1,2]}"#.to_owned())]
    );
}

#[tokio::test]
async fn a_direct_invoke_with_a_typo_is_rejected_not_broadcast() {
    let (service, sent) = pusher(store_for_fixtures().await);

    let error = handle_invocation(r#"{"user":["u-1"],"data":1}"#, &service, None)
        .await
        .expect_err("typo");

    assert!(error.to_string().contains("unknown field `user`"));
    assert!(sent.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn a_payload_that_is_not_json_is_an_error_not_a_panic() {
    let (service, _) = pusher(store_for_fixtures().await);

    let result = handle_invocation("\u{0}garbage", &service, None).await;

    assert!(result.is_err());
}

/// The fixtures' push service, with the store as its ledger.
fn with_ledger(
    store: std::sync::Arc<wspush_adapters::MemoryStore>,
) -> (
    wspush_ports::PushService<wspush_adapters::MemoryStore, wspush_ports::MockConnectionGateway>,
    Sent,
) {
    let (service, sent) = pusher(std::sync::Arc::clone(&store));
    let service = service.with_ledger(store, wspush_ports::LedgerConfig::default());
    (service, sent)
}

#[tokio::test]
async fn a_redelivered_sqs_batch_is_skipped_by_message_id_and_not_reported_failed() {
    let (service, sent) = with_ledger(store_for_fixtures().await);
    handle_invocation(SQS_BATCH, &service, None)
        .await
        .expect("handled");
    let first = recipients(&sent);

    let again = handle_invocation(SQS_BATCH, &service, None)
        .await
        .expect("handled");

    assert_eq!(recipients(&sent), first, "nothing was sent a second time");
    assert_eq!(
        again,
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "2e1424d4-f796-459a-8184-9c92662be6da"}]}),
        "only the malformed record is failed again"
    );
}

#[tokio::test]
async fn an_sqs_record_that_another_delivery_is_pushing_is_reported_failed_for_later() {
    let store = store_for_fixtures().await;
    let (service, sent) = with_ledger(std::sync::Arc::clone(&store));
    let event: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_str(SQS_BATCH).expect("SQS event");
    let busy = event.records[0].message_id.clone().expect("an ID");
    wspush_ports::RequestLedger::claim(
        &*store,
        &wspush_domain::RequestId::parse(busy.as_str()).expect("valid"),
        NOW,
        NOW.saturating_add(std::time::Duration::from_secs(900)),
    )
    .await
    .expect("claim");

    let answer = handle_sqs(event, &service, None)
        .await
        .expect("every failed record has a message ID");

    let failed = failed_ids(&answer);
    assert!(failed.contains(&busy.as_str()), "{failed:?}");
    assert!(
        recipients(&sent)
            .iter()
            .all(|(connection, _)| connection == "room-member"),
        "the busy record's audience got nothing: {:?}",
        recipients(&sent)
    );
}

#[tokio::test]
async fn a_direct_invoke_names_its_outcome() {
    let (service, _) = with_ledger(store_for_fixtures().await);
    let request = r#"{"id":"order-1","users":["u-1"],"data":1}"#;

    let first = handle_invocation(request, &service, None)
        .await
        .expect("handled");
    let second = handle_invocation(request, &service, None)
        .await
        .expect("handled");

    assert_eq!(first["outcome"], "complete");
    assert_eq!(first["delivered"], 2);
    assert_eq!(second["outcome"], "duplicate");
    assert_eq!(second["id"], "order-1");
}

fn sqs_record(message_id: &str, body: &str) -> serde_json::Value {
    serde_json::json!({
        "messageId": message_id, "receiptHandle": "r", "body": body,
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
        "awsRegion": "us-east-1", "attributes": {}, "messageAttributes": {}
    })
}

#[tokio::test]
async fn a_control_request_on_the_queue_is_carried_out_and_a_malformed_one_is_reported_failed() {
    let store = store_for_fixtures().await;
    let (service, _) = pusher(std::sync::Arc::clone(&store));
    let batch = serde_json::json!({"Records": [
        sqs_record("good", r#"{"action":"subscribe","users":["u-1"],"topics":["news:1"]}"#),
        sqs_record("bad", r#"{"action":"subscribe","users":["u-1"],"topic":["news:1"]}"#),
    ]});

    let answer = handle_invocation(&batch.to_string(), &service, None)
        .await
        .expect("handled");

    assert_eq!(
        answer,
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "bad"}]})
    );
    for connection in ["u1-phone", "u1-laptop"] {
        let held = wspush_ports::ConnectionStore::subscriptions(&*store, &id(connection))
            .await
            .expect("read");
        assert_eq!(held, [topic("news:1")], "{connection}");
    }
}

#[tokio::test]
async fn a_disconnect_the_gateway_fails_is_reported_failed_so_it_is_retried() {
    let store = store_for_fixtures().await;
    let mut gateway = wspush_ports::MockConnectionGateway::new();
    gateway.expect_delete().returning(|_| {
        Err(wspush_ports::GatewayError::Unavailable(
            "503 from @connections".into(),
        ))
    });
    let service = wspush_ports::PushService::new(
        std::sync::Arc::clone(&store),
        std::sync::Arc::new(gateway),
        clock(),
        wspush_ports::PushConfig::default(),
    )
    .expect("config");
    let batch = serde_json::json!({"Records": [
        sqs_record("kick", r#"{"action":"disconnect","users":["u-1"]}"#),
    ]});

    let answer = handle_invocation(&batch.to_string(), &service, None)
        .await
        .expect("handled");

    assert_eq!(
        answer,
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "kick"}]})
    );
    let direct = handle_invocation(r#"{"action":"disconnect","users":["u-1"]}"#, &service, None)
        .await
        .expect_err("a direct invoke fails");
    assert!(
        direct.to_string().contains("closing connection"),
        "{direct}"
    );
}
