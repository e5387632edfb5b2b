//! The [`ConnectionStore`] port: connection and subscription writes, and audience reads.

use std::collections::HashSet;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use wspush_domain::{Connection, ConnectionId, ExternalId, Source, Timestamp};
use wspush_ports::{ConnectionStore, Cursor, Deletion, Page, StoreError};

use super::DynamoDbStore;
use super::batch::BATCH_GET_MAX;
use super::cursor::{decode_cursor, encode_cursor};
use super::errors::{cursor_error, store_error};
use super::items::*;

impl DynamoDbStore {
    /// Whether `index` holds the live item of `connection` under `attribute = key`.
    async fn index_shows(
        &self,
        index: &str,
        attribute: &str,
        key: &str,
        connection: &ConnectionId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#key = :key AND #pk = :pk")
            .filter_expression("#expires > :now")
            .expression_attribute_names("#key", attribute)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#expires", EXPIRES_AT_MS)
            .expression_attribute_values(":key", AttributeValue::S(key.to_owned()))
            .expression_attribute_values(":pk", AttributeValue::S(pk_of(connection)))
            .expression_attribute_values(":now", number(now.unix_millis()))
            .send()
            .await
            .map_err(store_error)?;
        Ok(!output.items().is_empty())
    }

    /// The connection's item, read consistently, live or not.
    pub(super) async fn connection_item(
        &self,
        connection: &ConnectionId,
    ) -> Result<Option<Item>, StoreError> {
        Ok(self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(connection_key(connection)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?
            .item)
    }

    async fn query_index(
        &self,
        index: &str,
        key: &str,
        value: &str,
        cursor: Option<Cursor>,
        limit: usize,
        now: Timestamp,
    ) -> Result<Page, StoreError> {
        let resumed = cursor.is_some();
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#key = :key")
            .filter_expression("#expires > :now")
            .expression_attribute_names("#key", key)
            .expression_attribute_names("#expires", EXPIRES_AT_MS)
            .expression_attribute_values(":key", AttributeValue::S(value.to_owned()))
            .expression_attribute_values(":now", number(now.unix_millis()))
            .limit(page_limit(limit))
            .set_exclusive_start_key(decode_cursor(cursor)?)
            .send()
            .await
            .map_err(|error| cursor_error(resumed, error))?;
        let user_attribute = if index == BY_USER { OWNER } else { MEMBER };
        page_of(output.items(), output.last_evaluated_key(), user_attribute)
    }

    async fn scan_segment(
        &self,
        segment: wspush_domain::Segment,
        cursor: Option<Cursor>,
        limit: usize,
        now: Timestamp,
    ) -> Result<Page, StoreError> {
        let resumed = cursor.is_some();
        let output = self
            .client
            .scan()
            .table_name(&self.table)
            .index_name(BY_USER)
            .segment(i32::try_from(segment.index()).unwrap_or(i32::MAX))
            .total_segments(i32::try_from(segment.total()).unwrap_or(i32::MAX))
            .filter_expression("#expires > :now")
            .expression_attribute_names("#expires", EXPIRES_AT_MS)
            .expression_attribute_values(":now", number(now.unix_millis()))
            .limit(page_limit(limit))
            .set_exclusive_start_key(decode_cursor(cursor)?)
            .send()
            .await
            .map_err(|error| cursor_error(resumed, error))?;
        page_of(output.items(), output.last_evaluated_key(), OWNER)
    }

    async fn explicit_connections(
        &self,
        ids: &[ConnectionId],
        cursor: Option<Cursor>,
        limit: usize,
        now: Timestamp,
    ) -> Result<Page, StoreError> {
        let start = Cursor::offset_of(cursor.as_ref())?;
        let end = start
            .saturating_add(limit.clamp(1, BATCH_GET_MAX))
            .min(ids.len());
        let unique: HashSet<&ConnectionId> =
            ids.get(start..end).unwrap_or_default().iter().collect();
        let keys = unique.into_iter().map(connection_key).collect();
        let connections = self
            .batch_get(keys)
            .await?
            .iter()
            .map(|item| connection_from(item, OWNER))
            .filter(|result| result.as_ref().map_or(true, |c| c.is_live_at(now)))
            .collect::<Result<_, _>>()?;
        Ok(Page {
            connections,
            next: (end < ids.len()).then(|| Cursor::at_offset(end)),
        })
    }

    /// The keys of every item of a connection: its own and its subscriptions'.
    async fn keys_of(&self, connection: &ConnectionId) -> Result<Vec<Item>, StoreError> {
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", AttributeValue::S(pk_of(connection)))
                .projection_expression("#pk, #sk")
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(store_error)?;
            keys.extend(output.items().iter().cloned());
            start = output.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(keys);
            }
        }
    }
}

#[async_trait]
impl ConnectionStore for DynamoDbStore {
    async fn save(&self, connection: &Connection) -> Result<(), StoreError> {
        let mut item = connection_key(connection.id());
        item.insert(
            OWNER.into(),
            AttributeValue::S(connection.user().to_string()),
        );
        add_lifetime(&mut item, connection);
        if let Some(grants) = connection.grants() {
            let list = grants.to_strings().into_iter().map(AttributeValue::S);
            item.insert(GRANTS.into(), AttributeValue::L(list.collect()));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn get(
        &self,
        connection: &ConnectionId,
        now: Timestamp,
    ) -> Result<Option<Connection>, StoreError> {
        match self.connection_item(connection).await? {
            Some(item) => {
                let found = connection_from(&item, OWNER)?.with_grants(grants_from(&item)?);
                Ok(found.is_live_at(now).then_some(found))
            }
            None => Ok(None),
        }
    }

    /// One `Query` of `by_topic` on the topic and the connection's key: the index is what
    /// audience reads read, so what it shows is what a push would find. A user's own channel
    /// is also read through the user's connections (a push to `"users": [owner]`), so
    /// `by_user` must show the connection too.
    async fn audience_includes(
        &self,
        topic: &ExternalId,
        connection: &ConnectionId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        if !self
            .index_shows(BY_TOPIC, TOPIC, topic.as_str(), connection, now)
            .await?
        {
            return Ok(false);
        }
        match topic.channel_owner() {
            Some(owner) => {
                self.index_shows(BY_USER, OWNER, owner, connection, now)
                    .await
            }
            None => Ok(true),
        }
    }

    /// The connection item goes first, then a consistent query finds what is left (its
    /// subscriptions) and a batch deletes it. A subscribe racing the delete either commits
    /// before the first step (and its items are found by the query) or fails its condition
    /// on the connection item: no subscription outlives its connection. A delete that fails
    /// after the first step leaves subscriptions that no subscribe can add to, which a
    /// retry of the delete (a prune after the next 410) or the TTL removes.
    async fn delete(&self, connection: &ConnectionId) -> Result<Deletion, StoreError> {
        Ok(self.delete_reporting_topics(connection).await?.0)
    }

    async fn delete_reporting_topics(
        &self,
        connection: &ConnectionId,
    ) -> Result<(Deletion, Vec<ExternalId>), StoreError> {
        // Conditional on the item being there: of concurrent deletes exactly one succeeds.
        // (Asking for the old attributes instead was not enough: under 8 concurrent pushes
        // DynamoDB Local returned them to more than one deleter of an item.)
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(connection_key(connection)))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        let deletion = match deleted {
            Ok(_) => Deletion::Removed,
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(DeleteItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Deletion::AlreadyGone
            }
            Err(error) => return Err(store_error(error)),
        };
        // Its subscriptions go in either case: a delete that lost the race, or one retried
        // after a failure between the two steps, finishes what the first one started. Read
        // after the connection item is gone, they are all it will ever hold (a subscribe is
        // conditional on that item).
        let keys = self.keys_of(connection).await?;
        let topics = topics_in(&keys)?;
        self.batch_delete(keys).await?;
        Ok((deletion, topics))
    }

    async fn subscribe_at_most(
        &self,
        connection: &Connection,
        topics: &[ExternalId],
        max: usize,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.subscribe_counted(connection, topics, max, now).await
    }

    async fn unsubscribe(
        &self,
        connection: &ConnectionId,
        topics: &[ExternalId],
    ) -> Result<(), StoreError> {
        self.unsubscribe_counted(connection, topics).await
    }

    async fn subscriptions(
        &self,
        connection: &ConnectionId,
    ) -> Result<Vec<ExternalId>, StoreError> {
        topics_in(&self.keys_of(connection).await?)
    }

    async fn page(
        &self,
        source: &Source,
        cursor: Option<Cursor>,
        limit: usize,
        now: Timestamp,
    ) -> Result<Page, StoreError> {
        match source {
            Source::User(user) => {
                self.query_index(BY_USER, OWNER, user.as_str(), cursor, limit, now)
                    .await
            }
            Source::Topic(topic) => {
                self.query_index(BY_TOPIC, TOPIC, topic.as_str(), cursor, limit, now)
                    .await
            }
            Source::Connections(ids) => self.explicit_connections(ids, cursor, limit, now).await,
            Source::All(segment) => self.scan_segment(*segment, cursor, limit, now).await,
        }
    }
}

/// The external IDs of the subscription keys among `keys` (a connection's items).
fn topics_in(keys: &[Item]) -> Result<Vec<ExternalId>, StoreError> {
    let mut topics = Vec::new();
    for key in keys {
        if let Some(topic) = string(key, SK)?.strip_prefix(TOPIC_PREFIX) {
            topics.push(ExternalId::parse(topic).map_err(|error| corrupt(key, error))?);
        }
    }
    Ok(topics)
}

/// A page of a `Query` or `Scan`: its items as connections (their user in `user_attribute`),
/// and its `LastEvaluatedKey` as the cursor.
fn page_of(items: &[Item], last: Option<&Item>, user_attribute: &str) -> Result<Page, StoreError> {
    Ok(Page {
        connections: items
            .iter()
            .map(|item| connection_from(item, user_attribute))
            .collect::<Result<_, _>>()?,
        next: encode_cursor(last)?,
    })
}
