//! The [`PresenceStore`] port on the table: one item per topic and user (`pk` `p#<topic>`,
//! `sk` `u#<user>`) whose string set `conns` holds the user's connections in the topic.
//!
//! Every transition is decided by a condition, never by the values a write returns
//! (DynamoDB Local was seen returning an item's old attributes to more than one concurrent
//! writer): an entry is an `ADD` on condition that `conns` is absent (the user joins) or, when
//! that fails, present (the user was there); an exit is a `DELETE` from the set on condition
//! that it holds the connection and nothing else (the user leaves) or, when that fails, that
//! it holds the connection among others. DynamoDB removes a set that a `DELETE` empties, so
//! the next entry joins again. Each entry sets the item's TTL past the longest a connection
//! can live (two hours), so an item whose every connection vanished unseen goes too.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use wspush_domain::limits::MAX_CONNECTION_DURATION;
use wspush_domain::{ConnectionId, ExternalId, Timestamp, UserId};
use wspush_ports::{PresenceStore, StoreError, Transition};

use super::DynamoDbStore;
use super::errors::store_error;
use super::items::*;

/// How many times a presence write tries again after the set changed under it.
const ATTEMPTS: u32 = 20;

/// How long after its last entry a presence item lives: past any of its connections.
const ITEM_LIFETIME: Duration = Duration::from_secs(MAX_CONNECTION_DURATION.as_secs() + 3600);

/// The set attribute of a presence item.
const CONNS: &str = "conns";

fn presence_key(topic: &ExternalId, user: &UserId) -> Item {
    Item::from([
        (
            PK.to_owned(),
            AttributeValue::S(format!("{PRESENCE_PREFIX}{topic}")),
        ),
        (
            SK.to_owned(),
            AttributeValue::S(format!("{PRESENCE_USER_PREFIX}{user}")),
        ),
    ])
}

impl DynamoDbStore {
    /// One conditional update of a presence item's set: `Ok(true)` when it was written,
    /// `Ok(false)` when the condition failed.
    async fn presence_write(
        &self,
        topic: &ExternalId,
        user: &UserId,
        connection: &ConnectionId,
        update: &str,
        condition: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let ttl = now
            .saturating_add(ITEM_LIFETIME)
            .unix_millis()
            .div_ceil(1000);
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(presence_key(topic, user)))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#conns", CONNS)
            .expression_attribute_values(":set", AttributeValue::Ss(vec![connection.to_string()]));
        if update.contains(":ttl") {
            request = request
                .expression_attribute_names("#ttl", TTL)
                .expression_attribute_values(":ttl", number(ttl));
        }
        if condition.contains(":conn") {
            request = request
                .expression_attribute_values(":conn", AttributeValue::S(connection.to_string()));
        }
        if condition.contains(":one") {
            request = request.expression_attribute_values(":one", number(1));
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(error))
                if matches!(
                    error.err(),
                    UpdateItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                Ok(false)
            }
            Err(error) => Err(store_error(error)),
        }
    }
}

#[async_trait]
impl PresenceStore for DynamoDbStore {
    async fn enter(
        &self,
        topic: &ExternalId,
        user: &UserId,
        connection: &ConnectionId,
        now: Timestamp,
    ) -> Result<Transition, StoreError> {
        const UPDATE: &str = "ADD #conns :set SET #ttl = :ttl";
        for _ in 0..ATTEMPTS {
            if self
                .presence_write(
                    topic,
                    user,
                    connection,
                    UPDATE,
                    "attribute_not_exists(#conns)",
                    now,
                )
                .await?
            {
                return Ok(Transition::Joined);
            }
            if self
                .presence_write(
                    topic,
                    user,
                    connection,
                    UPDATE,
                    "attribute_exists(#conns)",
                    now,
                )
                .await?
            {
                return Ok(Transition::Unchanged);
            }
            // Emptied between the two: the user left meanwhile; try to join again.
        }
        Err(contention("entering", topic))
    }

    async fn exit(
        &self,
        topic: &ExternalId,
        user: &UserId,
        connection: &ConnectionId,
    ) -> Result<Transition, StoreError> {
        const UPDATE: &str = "DELETE #conns :set";
        for _ in 0..ATTEMPTS {
            if self
                .presence_write(
                    topic,
                    user,
                    connection,
                    UPDATE,
                    "contains(#conns, :conn) AND size(#conns) = :one",
                    Timestamp::EPOCH,
                )
                .await?
            {
                return Ok(Transition::Left);
            }
            if self
                .presence_write(
                    topic,
                    user,
                    connection,
                    UPDATE,
                    "contains(#conns, :conn) AND size(#conns) > :one",
                    Timestamp::EPOCH,
                )
                .await?
            {
                return Ok(Transition::Unchanged);
            }
            if !self.present(topic, user).await?.contains(connection) {
                // Never there, or removed by a concurrent exit.
                return Ok(Transition::Unchanged);
            }
            // The set changed size between the two: try again.
        }
        Err(contention("leaving", topic))
    }

    async fn present(
        &self,
        topic: &ExternalId,
        user: &UserId,
    ) -> Result<Vec<ConnectionId>, StoreError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(presence_key(topic, user)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?
            .item;
        let Some(AttributeValue::Ss(connections)) = item.and_then(|mut item| item.remove(CONNS))
        else {
            return Ok(Vec::new());
        };
        connections
            .into_iter()
            .map(|connection| {
                ConnectionId::parse(connection).map_err(|error| {
                    StoreError::Unknown(anyhow::anyhow!(
                        "a presence item holds a bad connection ID: {error}"
                    ))
                })
            })
            .collect()
    }
}

fn contention(doing: &str, topic: &ExternalId) -> StoreError {
    StoreError::Unavailable(
        format!("{doing} topic {topic}'s presence lost the race {ATTEMPTS} times").into(),
    )
}
