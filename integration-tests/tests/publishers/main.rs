//! The SQS and SNS publishers against moto's server, which speaks both wire protocols, and
//! one full path: SQS -> the pusher handler -> sockets on the local gateway.

use std::collections::BTreeSet;
use std::sync::Arc;

use aws_sdk_sqs::types::QueueAttributeName;
use wspush_adapters::{SnsPublisher, SqsPublisher};
use wspush_domain::{NotificationRequest, UserId};
use wspush_integration_tests::moto;
use wspush_ports::{NotificationPublisher, PublishError};

fn request(n: usize) -> NotificationRequest {
    NotificationRequest::builder()
        .to_users([UserId::parse(format!("u-{n}")).expect("valid")])
        .data(&serde_json::json!({ "n": n }))
        .build()
        .expect("valid")
}

fn big_request(n: usize) -> NotificationRequest {
    NotificationRequest::builder()
        .broadcast()
        .data(&format!("{n}:{}", "x".repeat(100 * 1024)))
        .build()
        .expect("valid")
}

/// Every message body in the queue (receiving until it is empty).
async fn drain(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let output = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        let messages = output.messages();
        if messages.is_empty() {
            return bodies;
        }
        for message in messages {
            bodies.push(message.body().unwrap_or_default().to_owned());
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
    }
}

fn as_set(requests: &[NotificationRequest]) -> BTreeSet<String> {
    requests.iter().map(NotificationRequest::to_json).collect()
}

#[tokio::test]
async fn single_and_batched_requests_published_to_sqs_are_read_back_intact() {
    let sdk = moto::sdk_config();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue_url = moto::new_queue(&sqs, "notifications").await;
    let publisher = SqsPublisher::new(&sdk, &queue_url);
    let single = request(0);
    let batch: Vec<NotificationRequest> = (1..=23).map(request).collect();

    let id = publisher.publish(&single).await.expect("published");
    let results = publisher.publish_batch(&batch).await;
    let received = drain(&sqs, &queue_url).await;

    assert!(!id.is_empty());
    assert_eq!(results.len(), 23);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let mut expected = as_set(&batch);
    expected.insert(single.to_json());
    let received: BTreeSet<String> = received.into_iter().collect();
    assert_eq!(received, expected);
    for body in &received {
        NotificationRequest::parse(body).expect("the pusher can parse what was published");
    }
}

#[tokio::test]
async fn a_batch_over_the_256_kb_limit_is_split_and_every_request_arrives() {
    let sdk = moto::sdk_config();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue_url = moto::new_queue(&sqs, "big").await;
    let publisher = SqsPublisher::new(&sdk, &queue_url);
    // Five requests of about 100 KB: 500 KB would be refused as one batch.
    let batch: Vec<NotificationRequest> = (0..5).map(big_request).collect();

    let results = publisher.publish_batch(&batch).await;
    let received: BTreeSet<String> = drain(&sqs, &queue_url).await.into_iter().collect();

    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(received, as_set(&batch));
}

#[tokio::test]
async fn a_request_too_large_for_sqs_never_leaves_the_producer() {
    let sdk = moto::sdk_config();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue_url = moto::new_queue(&sqs, "too-big").await;
    let publisher = SqsPublisher::new(&sdk, &queue_url);
    // Valid data, but 30,000 exclusions make the JSON larger than a message may be.
    let excluded = (0..30_000).map(|n| UserId::parse(format!("excluded-user-{n}")).expect("valid"));
    let oversized = NotificationRequest::builder()
        .broadcast()
        .except_users(excluded)
        .data(&1)
        .build()
        .expect("valid request");

    let single = publisher.publish(&oversized).await;
    let batch = publisher
        .publish_batch(&[request(1), oversized.clone()])
        .await;

    assert!(
        matches!(single, Err(PublishError::Rejected(_))),
        "{single:?}"
    );
    assert!(batch[0].is_ok());
    assert!(
        matches!(&batch[1], Err(PublishError::Rejected(reason)) if reason.contains("bytes")),
        "{batch:?}"
    );
    assert_eq!(drain(&sqs, &queue_url).await, [request(1).to_json()]);
}

#[tokio::test]
async fn a_missing_queue_is_reported_for_every_request_not_dropped() {
    let sdk = moto::sdk_config();
    let publisher = SqsPublisher::new(
        &sdk,
        format!("{}/123456789012/no-such-queue", moto::endpoint()),
    );

    let results = publisher.publish_batch(&[request(1), request(2)]).await;

    assert_eq!(results.len(), 2);
    assert!(results.iter().all(Result::is_err), "{results:?}");
}

#[tokio::test]
async fn requests_published_to_sns_arrive_in_a_subscribed_queue() {
    let sdk = moto::sdk_config();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let sns = aws_sdk_sns::Client::new(&sdk);
    let queue_url = moto::new_queue(&sqs, "from-sns").await;
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("attributes")
        .attributes()
        .and_then(|attributes| attributes.get(&QueueAttributeName::QueueArn))
        .expect("queue ARN")
        .clone();
    let topic_arn = sns
        .create_topic()
        .name(format!("notifications-{}", fastrand::u32(..)))
        .send()
        .await
        .expect("topic")
        .topic_arn()
        .expect("topic ARN")
        .to_owned();
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .expect("subscribe");
    let publisher = SnsPublisher::new(&sdk, &topic_arn);
    let single = request(0);
    let batch: Vec<NotificationRequest> = (1..=12).map(request).collect();

    publisher.publish(&single).await.expect("published");
    let results = publisher.publish_batch(&batch).await;
    let received: BTreeSet<String> = drain(&sqs, &queue_url).await.into_iter().collect();

    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let mut expected = as_set(&batch);
    expected.insert(single.to_json());
    assert_eq!(received, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_through_sqs_reaches_sockets_on_the_local_gateway() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;

    let gateway = wspush_local::start(wspush_local::LocalConfig::default())
        .await
        .expect("gateway");
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("{}?user=u-7", gateway.websocket_url()))
            .await
            .expect("socket");
    wait_for_socket(&gateway).await;
    let sdk = moto::sdk_config();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue_url = moto::new_queue(&sqs, "full-path").await;
    SqsPublisher::new(&sdk, &queue_url)
        .publish(&request(7))
        .await
        .expect("published");

    // What Lambda's event source mapping does: receive, and hand the pusher an SQS event.
    let received = sqs
        .receive_message()
        .queue_url(&queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive");
    let event = moto::sqs_event(received.messages());
    let pusher = wspush_ports::PushService::new(
        gateway.store(),
        Arc::new(gateway.api_gateway()),
        Arc::new(wspush_adapters::SystemClock),
        wspush_ports::PushConfig::default(),
    )
    .expect("config");
    let answer = wspush_handlers::handle_invocation(&event, &pusher, None)
        .await
        .expect("handled");
    let frame = tokio::time::timeout(std::time::Duration::from_secs(5), socket.next())
        .await
        .expect("a message within 5 s");

    assert_eq!(answer, serde_json::json!({"batchItemFailures": []}));
    assert!(
        matches!(&frame, Some(Ok(Message::Text(text))) if text.as_str() == r#"{"n":7}"#),
        "{frame:?}"
    );
    gateway.shutdown().await.expect("shutdown");
}

/// Waits until the gateway has registered the one socket just opened.
async fn wait_for_socket(gateway: &wspush_local::RunningGateway) {
    for _ in 0..250 {
        if !gateway.open_connections().is_empty() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the socket was never registered");
}
