//! `wspush disconnect`, `subscribe`, `unsubscribe`: a control request to the pusher (through
//! SQS, SNS or a local gateway); `wspush occupancy`: a topic's audience, counted.

use std::sync::Arc;

use anyhow::{Context, anyhow};
use serde_json::{Value, json};
use wspush_adapters::aws::load_sdk_config;
use wspush_adapters::{DynamoDbStore, SnsPublisher, SqsPublisher, SystemClock};
use wspush_domain::{ConnectionId, ControlAction, ControlRequest, ExternalId, UserId};
use wspush_handlers::settings::names;
use wspush_ports::Clock;

use crate::notify::{ids, local_request};
use crate::{ControlArgs, OccupancyArgs, Via, invalid};

pub(crate) async fn control(
    action: ControlAction,
    args: ControlArgs,
    json_output: bool,
) -> anyhow::Result<()> {
    let request = ControlRequest::new(
        action,
        ids("users", &args.users, UserId::parse)?,
        ids("connections", &args.connections, ConnectionId::parse)?,
        ids("topics", &args.topics, ExternalId::parse)?,
    )
    .map_err(|error| invalid(error.to_string()))?;
    let text = request.to_json();
    let published = match args.via {
        Via::Local => {
            let (status, body) =
                local_request(&args.local_url, "POST", "/notifications", &text).await?;
            let report: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
            if json_output {
                println!("{report}");
            } else {
                println!(
                    "{}: {} connections{}",
                    action.as_str(),
                    report["connections"],
                    match action {
                        ControlAction::Disconnect => format!(
                            ", closed {}, already closed {}",
                            report["closed"].as_u64().unwrap_or(0),
                            report["already_closed"].as_u64().unwrap_or(0)
                        ),
                        _ => String::new(),
                    }
                );
            }
            return match status {
                200 => Ok(()),
                400 => Err(invalid(format!(
                    "the local gateway refused the request: {}",
                    report["error"]
                ))),
                _ => Err(anyhow!(
                    "the control request failed (HTTP {status}): {report}"
                )),
            };
        }
        Via::Sqs => {
            let queue_url = args.queue_url.ok_or_else(|| {
                invalid(format!(
                    "--via sqs needs --queue-url or {}",
                    names::QUEUE_URL
                ))
            })?;
            SqsPublisher::new(&load_sdk_config().await, queue_url)
                .publish_text(&text)
                .await
        }
        Via::Sns => {
            let topic_arn = args.topic_arn.ok_or_else(|| {
                invalid(format!(
                    "--via sns needs --topic-arn or {}",
                    names::TOPIC_ARN
                ))
            })?;
            SnsPublisher::new(&load_sdk_config().await, topic_arn)
                .publish_text(&text)
                .await
        }
    };
    let message_id = published.context("publishing the control request")?;
    if json_output {
        println!("{}", json!({"message_id": message_id}));
    } else {
        println!("published: {message_id}");
    }
    Ok(())
}

pub(crate) async fn occupancy(args: OccupancyArgs, json_output: bool) -> anyhow::Result<()> {
    let topic = ExternalId::parse(args.topic.clone())
        .map_err(|error| invalid(format!("--topic: {error}")))?;
    let (connections, users) = match (&args.table, &args.local_url) {
        (Some(table), _) => {
            let sdk = load_sdk_config().await;
            let store = Arc::new(DynamoDbStore::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                table,
            ));
            let counted = wspush_ports::occupancy(store, &topic, SystemClock.now())
                .await
                .context("reading the store")?;
            (counted.connections, counted.users)
        }
        (None, Some(local_url)) => {
            let path = format!("/occupancy?topic={}", percent_encode(topic.as_str()));
            let (status, body) = local_request(local_url, "GET", &path, "").await?;
            let answer: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
            if status != 200 {
                return Err(anyhow!(
                    "the local gateway answered HTTP {status}: {answer}"
                ));
            }
            let count = |field: &str| answer[field].as_u64().unwrap_or(0) as usize;
            (count("connections"), count("users"))
        }
        (None, None) => {
            return Err(invalid(format!(
                "name the store: --table or {}, or --local-url",
                names::TABLE
            )));
        }
    };
    if json_output {
        println!(
            "{}",
            json!({"topic": topic.as_str(), "connections": connections, "users": users})
        );
    } else {
        println!("{topic}: {connections} connections, {users} users");
    }
    Ok(())
}

/// `text` for a URL query: everything but unreserved characters percent-encoded.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b':') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}
