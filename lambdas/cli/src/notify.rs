//! `wspush notify`: one request, built from the arguments or read whole, sent to SQS, SNS or
//! a local gateway.

use std::io::Read;

use anyhow::{Context, anyhow};
use serde_json::{Value, json};
use wspush_adapters::aws::load_sdk_config;
use wspush_adapters::{SnsPublisher, SqsPublisher};
use wspush_domain::{ConnectionId, ExternalId, NotificationRequest, UserId};
use wspush_handlers::settings::names;
use wspush_local::client::{self, ClientError};
use wspush_ports::NotificationPublisher;

use crate::{NotifyArgs, Via, invalid};

pub(crate) fn ids<T>(
    field: &str,
    values: &[String],
    parse: fn(String) -> Result<T, wspush_domain::IdError>,
) -> anyhow::Result<Vec<T>> {
    values
        .iter()
        .enumerate()
        .map(|(index, value)| {
            parse(value.clone()).map_err(|error| invalid(format!("--{field}[{index}]: {error}")))
        })
        .collect()
}

fn build_request(args: &NotifyArgs) -> anyhow::Result<NotificationRequest> {
    if let Some(source) = &args.request {
        let mut text = String::new();
        if source == "-" {
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the request from stdin")?;
        } else {
            text = std::fs::read_to_string(source).with_context(|| format!("reading {source}"))?;
        }
        return NotificationRequest::parse(&text)
            .map_err(|error| invalid(format!("--request: {error}")));
    }
    let data = args.data.as_deref().unwrap_or_default();
    let data: Value = serde_json::from_str(data).map_err(|error| {
        invalid(format!(
            "--data is not JSON ({error}); quote a string as '\"text\"'"
        ))
    })?;
    let mut builder = NotificationRequest::builder()
        .to_users(ids("users", &args.users, UserId::parse)?)
        .to_topics(ids("topics", &args.topics, ExternalId::parse)?)
        .to_connections(ids("connections", &args.connections, ConnectionId::parse)?)
        .except_users(ids("exclude-users", &args.exclude_users, UserId::parse)?)
        .except_connections(ids(
            "exclude-connections",
            &args.exclude_connections,
            ConnectionId::parse,
        )?)
        .data(&data);
    if args.broadcast {
        builder = builder.broadcast();
    }
    builder.build().map_err(|error| {
        invalid(format!(
            "{error} (name --users, --topics or --connections, or pass --broadcast)"
        ))
    })
}

pub(crate) async fn notify(args: NotifyArgs, json_output: bool) -> anyhow::Result<()> {
    let request = build_request(&args)?;
    let answer = match args.via {
        Via::Local => {
            let (status, body) = local_request(
                &args.local_url,
                "POST",
                "/notifications",
                &request.to_json(),
            )
            .await?;
            let report: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
            if json_output {
                println!("{report}");
            } else {
                println!(
                    "delivered {}, pruned {}, failed {}, excluded {}",
                    report["delivered"],
                    report["pruned"],
                    report["failed"].as_array().map_or(0, Vec::len),
                    report["excluded"]
                );
            }
            return match status {
                200 => Ok(()),
                400 => Err(invalid(format!(
                    "the local gateway refused the request: {}",
                    report["error"]
                ))),
                _ => Err(anyhow!(
                    "the push did not reach every connection (HTTP {status})"
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
                .publish(&request)
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
                .publish(&request)
                .await
        }
    };
    let message_id = answer.context("publishing the request")?;
    if json_output {
        println!("{}", json!({"message_id": message_id}));
    } else {
        println!("published: {message_id}");
    }
    Ok(())
}

/// A request to a local gateway (http only: it listens on loopback).
pub(crate) async fn local_request(
    base: &str,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<(u16, String)> {
    let authority = base
        .strip_prefix("http://")
        .ok_or_else(|| invalid(format!("--local-url must start with http://, got {base}")))?
        .trim_end_matches('/');
    client::request(authority, method, path, body.as_bytes())
        .await
        .map_err(|error| match error {
            ClientError::Connect { source, .. } => anyhow!(source).context(format!(
                "connecting to the local gateway at {base} (is `cargo run -p wspush-local` running?)"
            )),
            ClientError::Io { source, .. } => anyhow!(source),
            ClientError::NotHttp { .. } => {
                anyhow!("the local gateway answered something that is not HTTP")
            }
        })
}
