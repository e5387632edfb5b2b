//! Subscription writes that keep the connection's count exact, so that the subscription
//! limit holds when one connection's messages are handled concurrently.
//!
//! The connection item carries `subs`, how many subscription items it has. A subscribe is one
//! transaction per 99 topics: an `Update` of the connection item that adds the number of new
//! topics, on condition that it exists, is live and holds at most `max - n`, and one `Put` per
//! topic on condition that the subscription does not exist yet. A topic already held fails
//! its `Put`; it is dropped and the rest tried again, so nothing counts twice. An unsubscribe
//! deletes, each on condition that the subscription exists, and takes the number deleted off
//! the count in the same transaction. Transactions that collide on the connection item
//! (`TransactionConflict`) are tried again after a short random pause.

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Delete, Put, TransactWriteItem, Update,
};
use wspush_domain::{Connection, ConnectionId, ExternalId, Timestamp};
use wspush_ports::{ConnectionStore, StoreError};

use super::DynamoDbStore;
use super::errors::{build_error, store_error};
use super::items::*;

/// `TransactWriteItems` takes at most 100 actions; one is the connection's count.
const TOPICS_PER_TRANSACTION: usize = 99;
/// How many times a transaction that collided with another is tried in all.
const CONFLICT_ATTEMPTS: u32 = 10;

/// What became of one transaction.
enum Attempt {
    /// It was written.
    Written,
    /// These positions of the chunk failed their condition (a subscription that already
    /// exists, or no longer does).
    Items(Vec<usize>),
    /// The connection item's condition failed alone.
    Connection,
    /// It collided with another transaction.
    Conflict,
}

impl DynamoDbStore {
    /// Subscribes `connection` to `topics` while it holds at most `max` (see the module).
    pub(super) async fn subscribe_counted(
        &self,
        connection: &Connection,
        topics: &[ExternalId],
        max: usize,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let unique: Vec<&ExternalId> = {
            let mut seen = HashSet::new();
            topics.iter().filter(|topic| seen.insert(*topic)).collect()
        };
        for chunk in unique.chunks(TOPICS_PER_TRANSACTION) {
            let mut chunk = chunk.to_vec();
            let mut conflicts = 0;
            while !chunk.is_empty() {
                let actions = self.subscribe_actions(connection, &chunk, max, now)?;
                match self.transact(actions).await? {
                    Attempt::Written => break,
                    Attempt::Items(held) => drop_positions(&mut chunk, &held),
                    Attempt::Connection => {
                        let held = self.why_not(connection.id(), now).await?;
                        if held.saturating_add(chunk.len()) <= max {
                            // Another call unsubscribed in between: try again.
                            pause(&mut conflicts).await?;
                            continue;
                        }
                        return Err(StoreError::SubscriptionLimit {
                            held,
                            adding: chunk.len(),
                            max,
                        });
                    }
                    Attempt::Conflict => pause(&mut conflicts).await?,
                }
            }
        }
        Ok(())
    }

    /// Unsubscribes `connection` from those of `topics` it holds, taking them off its count.
    pub(super) async fn unsubscribe_counted(
        &self,
        connection: &ConnectionId,
        topics: &[ExternalId],
    ) -> Result<(), StoreError> {
        let wanted: HashSet<&ExternalId> = topics.iter().collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let held: Vec<ExternalId> = self
            .subscriptions(connection)
            .await?
            .into_iter()
            .filter(|topic| wanted.contains(topic))
            .collect();
        for chunk in held.chunks(TOPICS_PER_TRANSACTION) {
            let mut chunk: Vec<&ExternalId> = chunk.iter().collect();
            let mut conflicts = 0;
            while !chunk.is_empty() {
                let actions = self.unsubscribe_actions(connection, &chunk)?;
                match self.transact(actions).await? {
                    Attempt::Written => break,
                    Attempt::Items(gone) => drop_positions(&mut chunk, &gone),
                    Attempt::Connection => {
                        // The connection is gone (its subscriptions go with it) or has no
                        // count: delete without counting.
                        self.delete_subscriptions(connection, &chunk).await?;
                        break;
                    }
                    Attempt::Conflict => pause(&mut conflicts).await?,
                }
            }
        }
        Ok(())
    }

    fn subscribe_actions(
        &self,
        connection: &Connection,
        topics: &[&ExternalId],
        max: usize,
        now: Timestamp,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let adding = topics.len();
        let mut condition = "attribute_exists(#pk) AND #expires > :now".to_owned();
        let mut count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(connection_key(connection.id())))
            .update_expression("SET #subs = if_not_exists(#subs, :zero) + :n")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#expires", EXPIRES_AT_MS)
            .expression_attribute_names("#subs", SUBSCRIPTIONS)
            .expression_attribute_values(":now", number(now.unix_millis()))
            .expression_attribute_values(":zero", number(0))
            .expression_attribute_values(":n", number(adding as u64));
        if max != usize::MAX {
            let Some(room) = max.checked_sub(adding) else {
                return Err(StoreError::SubscriptionLimit {
                    held: 0,
                    adding,
                    max,
                });
            };
            condition.push_str(" AND (attribute_not_exists(#subs) OR #subs <= :room)");
            count = count.expression_attribute_values(":room", number(room as u64));
        }
        let count = count
            .condition_expression(condition)
            .build()
            .map_err(build_error)?;
        let mut actions = vec![TransactWriteItem::builder().update(count).build()];
        for topic in topics {
            let mut item = subscription_key(connection.id(), topic);
            item.insert(TOPIC.into(), AttributeValue::S(topic.to_string()));
            item.insert(
                MEMBER.into(),
                AttributeValue::S(connection.user().to_string()),
            );
            add_lifetime(&mut item, connection);
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .build()
                .map_err(build_error)?;
            actions.push(TransactWriteItem::builder().put(put).build());
        }
        Ok(actions)
    }

    fn unsubscribe_actions(
        &self,
        connection: &ConnectionId,
        topics: &[&ExternalId],
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(connection_key(connection)))
            .update_expression("SET #subs = #subs - :n")
            .condition_expression("attribute_exists(#pk) AND #subs >= :n")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#subs", SUBSCRIPTIONS)
            .expression_attribute_values(":n", number(topics.len() as u64))
            .build()
            .map_err(build_error)?;
        let mut actions = vec![TransactWriteItem::builder().update(count).build()];
        for topic in topics {
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(subscription_key(connection, topic)))
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .build()
                .map_err(build_error)?;
            actions.push(TransactWriteItem::builder().delete(delete).build());
        }
        Ok(actions)
    }

    /// Runs one transaction whose first action is the connection's count.
    async fn transact(&self, actions: Vec<TransactWriteItem>) -> Result<Attempt, StoreError> {
        let error = match self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await
        {
            Ok(_) => return Ok(Attempt::Written),
            Err(error) => error,
        };
        let Some(reasons) = cancellation_reasons(&error) else {
            return Err(store_error(error));
        };
        let code = |reason: &CancellationReason| reason.code().unwrap_or("None").to_owned();
        if reasons
            .iter()
            .any(|reason| code(reason) == "TransactionConflict")
        {
            return Ok(Attempt::Conflict);
        }
        let items: Vec<usize> = reasons
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, reason)| code(reason) == "ConditionalCheckFailed")
            .map(|(position, _)| position - 1)
            .collect();
        if !items.is_empty() {
            return Ok(Attempt::Items(items));
        }
        if reasons
            .first()
            .is_some_and(|reason| code(reason) == "ConditionalCheckFailed")
        {
            return Ok(Attempt::Connection);
        }
        Err(store_error(error))
    }

    /// Why a subscribe's count failed: the connection is gone (the error), or it holds this
    /// many subscriptions.
    async fn why_not(
        &self,
        connection: &ConnectionId,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        let Some(item) = self.connection_item(connection).await? else {
            return Err(StoreError::ConnectionNotFound(connection.clone()));
        };
        if millis(&item, EXPIRES_AT_MS)? <= now {
            return Err(StoreError::ConnectionNotFound(connection.clone()));
        }
        match item.get(SUBSCRIPTIONS) {
            None => Ok(0),
            Some(value) => value
                .as_n()
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| corrupt(&item, format!("`{SUBSCRIPTIONS}` is not a count"))),
        }
    }

    /// Deletes subscription items without counting them.
    async fn delete_subscriptions(
        &self,
        connection: &ConnectionId,
        topics: &[&ExternalId],
    ) -> Result<(), StoreError> {
        self.batch_delete(
            topics
                .iter()
                .map(|topic| subscription_key(connection, topic)),
        )
        .await
    }
}

pub(super) fn cancellation_reasons(
    error: &SdkError<TransactWriteItemsError, HttpResponse>,
) -> Option<&[CancellationReason]> {
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
            Some(cancelled.cancellation_reasons())
        }
        _ => None,
    }
}

/// Removes the entries at `positions` from `chunk`.
fn drop_positions<T>(chunk: &mut Vec<T>, positions: &[usize]) {
    let mut position = 0;
    chunk.retain(|_| {
        let keep = !positions.contains(&position);
        position += 1;
        keep
    });
}

/// Waits a random 5-50 ms (doubling the ceiling with each collision), or gives up.
async fn pause(conflicts: &mut u32) -> Result<(), StoreError> {
    *conflicts += 1;
    if *conflicts >= CONFLICT_ATTEMPTS {
        return Err(StoreError::Unavailable(
            "subscription transactions kept colliding on the connection item".into(),
        ));
    }
    let ceiling = 50u64.saturating_mul(1 << (*conflicts).min(5));
    tokio::time::sleep(Duration::from_millis(fastrand::u64(5..ceiling))).await;
    Ok(())
}
