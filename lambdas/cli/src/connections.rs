//! `wspush connections`: list, count or prune the connections in the store.

use std::sync::Arc;

use anyhow::{Context, bail};
use futures::StreamExt;
use serde_json::json;
use wspush_adapters::aws::load_sdk_config;
use wspush_adapters::{
    ApiGatewayConfig, ApiGatewayGateway, DynamoDbStore, SqsPublisher, SystemClock,
};
use wspush_domain::PresencePolicy;
use wspush_handlers::settings::names;
use wspush_ports::{ConnectionService, Presence, PruneReport};

use crate::{ConnectionsAction, invalid};

pub(crate) async fn connections(
    action: ConnectionsAction,
    table: Option<String>,
    local_url: Option<String>,
    json_output: bool,
) -> anyhow::Result<()> {
    let Some(table) = table else {
        if local_url.is_some() {
            bail!(invalid(
                "the local gateway keeps its connections in its own process; use --table with `wspush-local --dynamodb-endpoint ... --table ...`"
            ));
        }
        return Err(invalid(format!(
            "name the store: --table or {}",
            names::TABLE
        )));
    };
    let sdk = load_sdk_config().await;
    let store = Arc::new(DynamoDbStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        table,
    ));
    let mut service = ConnectionService::new(Arc::clone(&store), Arc::new(SystemClock));
    if let ConnectionsAction::Prune {
        management_endpoint,
        dry_run,
        presence_namespaces,
        queue_url,
    } = &action
    {
        let policy = PresencePolicy::new(
            presence_namespaces
                .iter()
                .map(|namespace| namespace.trim())
                .filter(|namespace| !namespace.is_empty()),
        )
        .map_err(|error| invalid(format!("--presence-namespaces: {error}")))?;
        if policy.is_on() {
            let queue_url = queue_url.clone().ok_or_else(|| {
                invalid(format!(
                    "--presence-namespaces needs --queue-url or {}: the leaves go there",
                    names::QUEUE_URL
                ))
            })?;
            let queue = Arc::new(SqsPublisher::new(&sdk, queue_url));
            service = service.with_presence(Presence::new(policy, store, queue));
        }
        let gateway = ApiGatewayGateway::new(&sdk, &ApiGatewayConfig::new(management_endpoint))?;
        let report = service
            .prune_gone(&gateway, *dry_run, |gone| {
                if !json_output {
                    println!("gone: {gone}");
                }
            })
            .await?;
        print_prune(&report, json_output);
        return Ok(());
    }
    let mut count = 0usize;
    let mut pages = std::pin::pin!(service.live_connections());
    while let Some(page) = pages.next().await {
        for connection in page.context("reading the store")? {
            count += 1;
            if matches!(action, ConnectionsAction::List) {
                if json_output {
                    println!("{}", json!(connection));
                } else {
                    println!(
                        "{}\t{}\texpires {}",
                        connection.id(),
                        connection.user(),
                        connection.expires_at()
                    );
                }
            }
        }
    }
    if matches!(action, ConnectionsAction::Count) {
        if json_output {
            println!("{}", json!({"count": count}));
        } else {
            println!("{count}");
        }
    }
    Ok(())
}

fn print_prune(report: &PruneReport, json_output: bool) {
    let PruneReport {
        checked,
        gone,
        deleted,
    } = report;
    if json_output {
        println!(
            "{}",
            json!({"checked": checked, "gone": gone, "deleted": deleted})
        );
    } else {
        println!(
            "checked {checked}, gone {gone}{}",
            if *deleted {
                ", deleted"
            } else {
                " (dry run: nothing deleted)"
            }
        );
    }
}
