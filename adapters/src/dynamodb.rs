//! The DynamoDB connection store.
//!
//! # Table design
//!
//! One table, two sparse global secondary indexes. Every item has the key `pk` + `sk`:
//!
//! | item | `pk` | `sk` | other attributes |
//! |---|---|---|---|
//! | connection | `c#<connection id>` | `conn` | `owner` (user), `connected_at`, `expires_at_ms`, `ttl`, `grants` (a list of strings, only when the token limited its topics) |
//! | subscription | `c#<connection id>` | `t#<external id>` | `topic`, `member` (user), `connected_at`, `expires_at_ms`, `ttl` |
//! | request (ledger) | `r#<request id>` | `request` | `state` (`claimed` or `completed`), `until_ms`, `ttl` |
//!
//! | index | partition key | sort key | holds |
//! |---|---|---|---|
//! | `by_user` | `owner` | `pk` | connection items only (only they have `owner`) |
//! | `by_topic` | `topic` | `pk` | subscription items only (only they have `topic`) |
//!
//! A subscription is one item that serves both directions: connection to external IDs is a
//! `Query` on the table's `pk`, external ID to connections is a `Query` on `by_topic`.
//! Subscription items copy the connection's user and expiry, so a topic's audience is read
//! without a second lookup and exclusions apply to it directly.
//!
//! | access pattern | operation |
//! |---|---|
//! | save a connection | `PutItem` |
//! | read a connection | `GetItem` (consistent) |
//! | delete a connection with its subscriptions | `Query` `pk = c#id` (consistent), then `BatchWriteItem` deletes, 25 per call, retrying `UnprocessedItems` |
//! | subscribe | `TransactWriteItems`: a `ConditionCheck` that the connection exists and is live, and one `Put` per topic (99 per transaction) |
//! | unsubscribe | `BatchWriteItem` deletes |
//! | subscriptions of a connection | `Query` `pk = c#id AND begins_with(sk, "t#")` |
//! | connections of a user | `Query` on `by_user` |
//! | connections of an external ID | `Query` on `by_topic` |
//! | explicit connections | `BatchGetItem`, 100 keys per call, retrying `UnprocessedKeys` |
//! | broadcast | parallel `Scan` of `by_user` (segments), which holds no subscription item |
//! | broadcast minus excluded users or connections | the same scan; the push service drops excluded connections through hash sets, so DynamoDB's 100-value `IN` limit never applies |
//! | claim a request (ledger) | `PutItem` on condition `attribute_not_exists(pk) OR until_ms <= now`, returning the old item when the condition fails |
//! | complete a request (ledger) | `PutItem` |
//! | release a claim (ledger) | `DeleteItem` on condition `state = claimed AND until_ms = <its lease>` |
//!
//! Request items have neither `owner` nor `topic`, so no index and no broadcast sees them.
//!
//! `ttl` (epoch seconds) is the table's TTL attribute; since TTL deletion is lazy, every read
//! also filters on `expires_at_ms > now`. Index reads are eventually consistent: a connection
//! saved a few milliseconds before a push may be missed by that push.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, DeleteRequest,
    GlobalSecondaryIndex, KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType,
    Put, ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TransactWriteItem, WriteRequest,
};
use wspush_domain::{
    Connection, ConnectionId, ExternalId, RequestId, Source, Timestamp, TopicGrants, UserId,
};
use wspush_ports::{Claim, ConnectionStore, Cursor, Page, RequestLedger, StoreError};

type Item = HashMap<String, AttributeValue>;

const PK: &str = "pk";
const SK: &str = "sk";
const OWNER: &str = "owner";
const MEMBER: &str = "member";
const TOPIC: &str = "topic";
const CONNECTED_AT: &str = "connected_at";
const EXPIRES_AT_MS: &str = "expires_at_ms";
const GRANTS: &str = "grants";
/// The table's TTL attribute, in epoch seconds.
pub const TTL: &str = "ttl";
/// The index of connection items by user; scanned in segments for a broadcast.
pub const BY_USER: &str = "by_user";
/// The index of subscription items by external ID.
pub const BY_TOPIC: &str = "by_topic";

const STATE: &str = "state";
const UNTIL_MS: &str = "until_ms";
const CLAIMED: &str = "claimed";
const COMPLETED: &str = "completed";
const REQUEST_PREFIX: &str = "r#";
const REQUEST_SK: &str = "request";
const CONNECTION_SK: &str = "conn";
const CONNECTION_PREFIX: &str = "c#";
const TOPIC_PREFIX: &str = "t#";

/// `BatchWriteItem` takes at most 25 requests.
const BATCH_WRITE_MAX: usize = 25;
/// `BatchGetItem` takes at most 100 keys.
const BATCH_GET_MAX: usize = 100;
/// `TransactWriteItems` takes at most 100 actions; one is the connection check.
const TRANSACT_PUTS_MAX: usize = 99;
/// Attempts at a batch's unprocessed items before giving up.
const BATCH_ATTEMPTS: u32 = 8;

/// Where the DynamoDB store keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoDbConfig {
    /// The table's name.
    pub table: String,
}

impl DynamoDbConfig {
    /// The environment variable that names the table.
    pub const TABLE_VAR: &'static str = "WSPUSH_TABLE";

    /// Reads [`Self::TABLE_VAR`]. The endpoint comes from the SDK's own configuration
    /// (`AWS_ENDPOINT_URL_DYNAMODB` or `AWS_ENDPOINT_URL`).
    pub fn from_env() -> anyhow::Result<Self> {
        let table = std::env::var(Self::TABLE_VAR)
            .map_err(|_| anyhow::anyhow!("environment variable {} is not set", Self::TABLE_VAR))?;
        anyhow::ensure!(
            !table.trim().is_empty(),
            "environment variable {} is empty",
            Self::TABLE_VAR
        );
        Ok(Self { table })
    }
}

/// A [`ConnectionStore`] on one DynamoDB table (see the module docs for its design).
#[derive(Debug, Clone)]
pub struct DynamoDbStore {
    client: Client,
    table: String,
}

impl DynamoDbStore {
    /// A store on `table`, reached through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table with its indexes and TTL if it does not exist, and waits until it
    /// is active. For tests and the local gateway; deployments get the table from the SAM
    /// template, which declares the same schema.
    pub async fn ensure_table(&self) -> Result<(), StoreError> {
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .set_attribute_definitions(Some(
                [PK, SK, OWNER, TOPIC]
                    .into_iter()
                    .map(|name| {
                        AttributeDefinition::builder()
                            .attribute_name(name)
                            .attribute_type(ScalarAttributeType::S)
                            .build()
                    })
                    .collect::<Result<_, _>>()
                    .map_err(build_error)?,
            ))
            .set_key_schema(Some(key_schema(PK, SK)?))
            .global_secondary_indexes(index(BY_USER, OWNER)?)
            .global_secondary_indexes(index(BY_TOPIC, TOPIC)?)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(error) if error.code() == Some("ResourceInUseException") => return Ok(()),
            Err(error) => return Err(store_error(error)),
        }
        self.wait_until_active().await?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(TTL)
                    .build()
                    .map_err(build_error)?,
            )
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn wait_until_active(&self) -> Result<(), StoreError> {
        for _ in 0..120 {
            let described = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(store_error)?;
            if described
                .table()
                .and_then(|table| table.table_status())
                .is_some_and(|status| *status == TableStatus::Active)
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(StoreError::Unavailable(
            format!("table {} did not become active within 60 s", self.table).into(),
        ))
    }

    /// Writes `requests` in batches of 25, retrying unprocessed items with backoff.
    async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(BATCH_WRITE_MAX) {
            until_processed("BatchWriteItem", chunk.to_vec(), |pending| async move {
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(store_error)?;
                let unprocessed = output
                    .unprocessed_items()
                    .and_then(|items| items.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
                Ok((unprocessed, Vec::<Item>::new()))
            })
            .await?;
        }
        Ok(())
    }

    /// Reads the items with these keys, retrying unprocessed keys with backoff.
    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET_MAX) {
            let items = until_processed("BatchGetItem", chunk.to_vec(), |pending| async move {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .build()
                    .map_err(build_error)?;
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(store_error)?;
                let items = output
                    .responses()
                    .and_then(|responses| responses.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
                let unprocessed = output
                    .unprocessed_keys()
                    .and_then(|keys| keys.get(&self.table))
                    .map(|keys| keys.keys().to_vec())
                    .unwrap_or_default();
                Ok((unprocessed, items))
            })
            .await?;
            found.extend(items);
        }
        Ok(found)
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
        Ok(Page {
            connections: output
                .items()
                .iter()
                .map(|item| connection_from(item, user_attribute))
                .collect::<Result<_, _>>()?,
            next: encode_cursor(output.last_evaluated_key())?,
        })
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
        Ok(Page {
            connections: output
                .items()
                .iter()
                .map(|item| connection_from(item, OWNER))
                .collect::<Result<_, _>>()?,
            next: encode_cursor(output.last_evaluated_key())?,
        })
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
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(connection_key(connection)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        match output.item() {
            Some(item) => {
                let found = connection_from(item, OWNER)?.with_grants(grants_from(item)?);
                Ok(found.is_live_at(now).then_some(found))
            }
            None => Ok(None),
        }
    }

    /// The connection item goes first, then a consistent query finds what is left (its
    /// subscriptions) and a batch deletes it. A subscribe racing the delete either commits
    /// before the first step (and its items are found by the query) or fails its condition
    /// on the connection item: no subscription outlives its connection. A delete that fails
    /// after the first step leaves subscriptions that no subscribe can add to, which a
    /// retry of the delete (a prune after the next 410) or the TTL removes.
    async fn delete(&self, connection: &ConnectionId) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(connection_key(connection)))
            .send()
            .await
            .map_err(store_error)?;
        let keys = self.keys_of(connection).await?;
        let requests = keys
            .into_iter()
            .map(|key| {
                DeleteRequest::builder()
                    .set_key(Some(key))
                    .build()
                    .map(|delete| WriteRequest::builder().delete_request(delete).build())
                    .map_err(build_error)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write(requests).await
    }

    async fn subscribe(
        &self,
        connection: &Connection,
        topics: &[ExternalId],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let unique: Vec<&ExternalId> = {
            let mut seen = HashSet::new();
            topics.iter().filter(|topic| seen.insert(*topic)).collect()
        };
        for chunk in unique.chunks(TRANSACT_PUTS_MAX) {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(connection_key(connection.id())))
                .condition_expression("attribute_exists(#pk) AND #expires > :now")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#expires", EXPIRES_AT_MS)
                .expression_attribute_values(":now", number(now.unix_millis()))
                .build()
                .map_err(build_error)?;
            let mut actions = vec![TransactWriteItem::builder().condition_check(check).build()];
            for topic in chunk {
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
                    .build()
                    .map_err(build_error)?;
                actions.push(TransactWriteItem::builder().put(put).build());
            }
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(actions))
                .send()
                .await;
            if let Err(error) = result {
                if connection_check_failed(&error) {
                    return Err(StoreError::ConnectionNotFound(connection.id().clone()));
                }
                return Err(store_error(error));
            }
        }
        Ok(())
    }

    async fn unsubscribe(
        &self,
        connection: &ConnectionId,
        topics: &[ExternalId],
    ) -> Result<(), StoreError> {
        let unique: HashSet<&ExternalId> = topics.iter().collect();
        let requests = unique
            .into_iter()
            .map(|topic| {
                DeleteRequest::builder()
                    .set_key(Some(subscription_key(connection, topic)))
                    .build()
                    .map(|delete| WriteRequest::builder().delete_request(delete).build())
                    .map_err(build_error)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write(requests).await
    }

    async fn subscriptions(
        &self,
        connection: &ConnectionId,
    ) -> Result<Vec<ExternalId>, StoreError> {
        let mut topics = Vec::new();
        for key in self.keys_of(connection).await? {
            let sort = string(&key, SK)?;
            if let Some(topic) = sort.strip_prefix(TOPIC_PREFIX) {
                topics.push(ExternalId::parse(topic).map_err(|error| corrupt(&key, error))?);
            }
        }
        Ok(topics)
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

#[async_trait]
impl RequestLedger for DynamoDbStore {
    async fn claim(
        &self,
        id: &RequestId,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Claim, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(request_item(id, CLAIMED, lease_until)))
            .condition_expression("attribute_not_exists(#pk) OR #until <= :now")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#until", UNTIL_MS)
            .expression_attribute_values(":now", number(now.unix_millis()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let error = match result {
            Ok(_) => return Ok(Claim::Claimed),
            Err(error) => error,
        };
        let held = match error.as_service_error() {
            Some(PutItemError::ConditionalCheckFailedException(failed)) => failed.item().cloned(),
            _ => return Err(store_error(error)),
        };
        // The old item comes back with the failure; read it if this endpoint does not send it.
        let held = match held {
            Some(item) => Some(item),
            None => self
                .client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(request_key(id)))
                .consistent_read(true)
                .send()
                .await
                .map_err(store_error)?
                .item()
                .cloned(),
        };
        let Some(held) = held else {
            // Released in between by a delivery that failed: it is for a retry to claim.
            return Ok(Claim::InProgress { until: now });
        };
        let until = millis(&held, UNTIL_MS)?;
        Ok(match string(&held, STATE)? {
            COMPLETED => Claim::Completed,
            _ => Claim::InProgress { until },
        })
    }

    async fn complete(&self, id: &RequestId, keep_until: Timestamp) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(request_item(id, COMPLETED, keep_until)))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn release(&self, id: &RequestId, lease_until: Timestamp) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(request_key(id)))
            .condition_expression("#state = :claimed AND #until = :until")
            .expression_attribute_names("#state", STATE)
            .expression_attribute_names("#until", UNTIL_MS)
            .expression_attribute_values(":claimed", AttributeValue::S(CLAIMED.into()))
            .expression_attribute_values(":until", number(lease_until.unix_millis()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Completed, taken over, or already gone: nothing of ours to release.
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(DeleteItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(())
            }
            Err(error) => Err(store_error(error)),
        }
    }
}

fn request_key(id: &RequestId) -> Item {
    HashMap::from([
        (
            PK.to_owned(),
            AttributeValue::S(format!("{REQUEST_PREFIX}{id}")),
        ),
        (SK.to_owned(), AttributeValue::S(REQUEST_SK.to_owned())),
    ])
}

fn request_item(id: &RequestId, state: &str, until: Timestamp) -> Item {
    let mut item = request_key(id);
    item.insert(STATE.into(), AttributeValue::S(state.to_owned()));
    item.insert(UNTIL_MS.into(), number(until.unix_millis()));
    item.insert(TTL.into(), number(until.unix_millis().div_ceil(1000)));
    item
}

fn key_schema(hash: &str, range: &str) -> Result<Vec<KeySchemaElement>, StoreError> {
    [(hash, KeyType::Hash), (range, KeyType::Range)]
        .into_iter()
        .map(|(name, kind)| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        })
        .collect::<Result<_, _>>()
        .map_err(build_error)
}

fn index(name: &str, hash: &str) -> Result<GlobalSecondaryIndex, StoreError> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .set_key_schema(Some(key_schema(hash, PK)?))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(build_error)
}

fn pk_of(connection: &ConnectionId) -> String {
    format!("{CONNECTION_PREFIX}{connection}")
}

fn connection_key(connection: &ConnectionId) -> Item {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(pk_of(connection))),
        (SK.to_owned(), AttributeValue::S(CONNECTION_SK.to_owned())),
    ])
}

fn subscription_key(connection: &ConnectionId, topic: &ExternalId) -> Item {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(pk_of(connection))),
        (
            SK.to_owned(),
            AttributeValue::S(format!("{TOPIC_PREFIX}{topic}")),
        ),
    ])
}

fn add_lifetime(item: &mut Item, connection: &Connection) {
    let expires = connection.expires_at();
    item.insert(
        CONNECTED_AT.into(),
        number(connection.connected_at().unix_millis()),
    );
    item.insert(EXPIRES_AT_MS.into(), number(expires.unix_millis()));
    // Rounded up, so that TTL never removes an item before it has expired.
    item.insert(TTL.into(), number(expires.unix_millis().div_ceil(1000)));
}

fn number(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn page_limit(limit: usize) -> i32 {
    i32::try_from(limit.max(1)).unwrap_or(i32::MAX)
}

fn string<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|value| value.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| corrupt(item, format!("no string attribute `{name}`")))
}

fn millis(item: &Item, name: &str) -> Result<Timestamp, StoreError> {
    item.get(name)
        .and_then(|value| value.as_n().ok())
        .and_then(|text| text.parse::<u64>().ok())
        .map(Timestamp::from_unix_millis)
        .ok_or_else(|| corrupt(item, format!("no numeric attribute `{name}`")))
}

fn connection_from(item: &Item, user_attribute: &str) -> Result<Connection, StoreError> {
    let pk = string(item, PK)?;
    let id = pk
        .strip_prefix(CONNECTION_PREFIX)
        .ok_or_else(|| corrupt(item, "`pk` is not a connection key"))?;
    Ok(Connection::restore(
        ConnectionId::parse(id).map_err(|error| corrupt(item, error))?,
        UserId::parse(string(item, user_attribute)?).map_err(|error| corrupt(item, error))?,
        millis(item, CONNECTED_AT)?,
        millis(item, EXPIRES_AT_MS)?,
    ))
}

/// The `grants` of a connection item; absent when its token did not limit its topics.
fn grants_from(item: &Item) -> Result<Option<TopicGrants>, StoreError> {
    let Some(value) = item.get(GRANTS) else {
        return Ok(None);
    };
    let list = value
        .as_l()
        .map_err(|_| corrupt(item, format!("`{GRANTS}` is not a list")))?;
    let strings = list
        .iter()
        .map(|grant| grant.as_s().cloned())
        .collect::<Result<Vec<String>, _>>()
        .map_err(|_| corrupt(item, format!("`{GRANTS}` holds a non-string")))?;
    TopicGrants::parse(strings)
        .map(Some)
        .map_err(|error| corrupt(item, error))
}

fn corrupt(item: &Item, problem: impl std::fmt::Display) -> StoreError {
    let key = item
        .get(PK)
        .and_then(|value| value.as_s().ok())
        .map_or("<no pk>", String::as_str);
    StoreError::Unknown(anyhow::anyhow!("corrupt item {key}: {problem}"))
}

/// Cursors are a page's `LastEvaluatedKey`: string attributes only (the keys of the table
/// and its indexes), as a JSON object.
fn encode_cursor(key: Option<&Item>) -> Result<Option<Cursor>, StoreError> {
    let Some(key) = key else {
        return Ok(None);
    };
    let mut fields = serde_json::Map::new();
    for (name, value) in key {
        let text = value
            .as_s()
            .map_err(|_| corrupt(key, format!("key attribute `{name}` is not a string")))?;
        fields.insert(name.clone(), serde_json::Value::String(text.clone()));
    }
    Ok(Some(Cursor::new(
        serde_json::Value::Object(fields).to_string(),
    )))
}

fn decode_cursor(cursor: Option<Cursor>) -> Result<Option<Item>, StoreError> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    let fields: HashMap<String, String> = serde_json::from_str(cursor.as_str())
        .map_err(|error| StoreError::InvalidCursor(format!("{:?}: {error}", cursor.as_str())))?;
    if !fields.contains_key(PK) {
        return Err(StoreError::InvalidCursor(format!(
            "{:?}: no `{PK}`",
            cursor.as_str()
        )));
    }
    Ok(Some(
        fields
            .into_iter()
            .map(|(name, value)| (name, AttributeValue::S(value)))
            .collect(),
    ))
}

/// Calls `batch` with `pending` until it reports nothing unprocessed, backing off between
/// calls, for at most [`BATCH_ATTEMPTS`] calls. Returns what the calls returned.
async fn until_processed<T, R, F, Fut>(
    operation: &str,
    mut pending: Vec<T>,
    mut batch: F,
) -> Result<Vec<R>, StoreError>
where
    F: FnMut(Vec<T>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, Vec<R>), StoreError>>,
{
    let mut results = Vec::new();
    let mut attempt = 0;
    while !pending.is_empty() {
        if attempt > 0 {
            if attempt >= BATCH_ATTEMPTS {
                return Err(StoreError::Throttled(
                    format!(
                        "{} entries still unprocessed after {BATCH_ATTEMPTS} {operation} attempts",
                        pending.len()
                    )
                    .into(),
                ));
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
        attempt += 1;
        let (unprocessed, done) = batch(pending).await?;
        results.extend(done);
        pending = unprocessed;
    }
    Ok(results)
}

fn backoff(attempt: u32) -> Duration {
    let ceiling = Duration::from_millis(25).saturating_mul(2u32.saturating_pow(attempt));
    ceiling.min(Duration::from_secs(2)).mul_f64(fastrand::f64())
}

fn connection_check_failed(error: &SdkError<TransactWriteItemsError, HttpResponse>) -> bool {
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
            cancelled
                .cancellation_reasons()
                .first()
                .and_then(|reason| reason.code())
                == Some("ConditionalCheckFailed")
        }
        _ => false,
    }
}

/// A `ValidationException` on a resumed read means the cursor was not one of ours.
fn cursor_error<E>(resumed: bool, error: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if resumed && error.code() == Some("ValidationException") {
        return StoreError::InvalidCursor(
            error
                .message()
                .unwrap_or("the starting key is invalid")
                .to_owned(),
        );
    }
    store_error(error)
}

/// Maps an SDK error onto the port's errors, keeping it as the cause.
fn store_error<E>(error: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    const THROTTLING: [&str; 4] = [
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "LimitExceededException",
    ];
    let status = error
        .raw_response()
        .map(|response| response.status().as_u16());
    let transport = matches!(
        error,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
    );
    if error.code().is_some_and(|code| THROTTLING.contains(&code)) {
        StoreError::Throttled(Box::new(error))
    } else if transport || status.is_some_and(|status| status >= 500) {
        StoreError::Unavailable(Box::new(error))
    } else {
        StoreError::Unknown(anyhow::Error::new(error).context("DynamoDB request failed"))
    }
}

fn build_error(error: BuildError) -> StoreError {
    StoreError::Unknown(anyhow::Error::new(error).context("building a DynamoDB request"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_through_text() {
        let key: Item = HashMap::from([
            (PK.to_owned(), AttributeValue::S("c#abc".into())),
            (OWNER.to_owned(), AttributeValue::S("ana".into())),
        ]);

        let cursor = encode_cursor(Some(&key)).expect("encode").expect("some");

        assert_eq!(decode_cursor(Some(cursor)).expect("decode"), Some(key));
    }

    #[test]
    fn a_cursor_without_a_table_key_is_invalid() {
        let result = decode_cursor(Some(Cursor::new(r#"{"owner":"ana"}"#)));

        assert!(matches!(result, Err(StoreError::InvalidCursor(_))));
    }

    #[test]
    fn the_ttl_is_rounded_up_to_the_next_second() {
        let connection = Connection::restore(
            ConnectionId::parse("c").expect("valid"),
            UserId::parse("u").expect("valid"),
            Timestamp::from_unix_millis(0),
            Timestamp::from_unix_millis(1_001),
        );
        let mut item = Item::new();

        add_lifetime(&mut item, &connection);

        assert_eq!(item[TTL], AttributeValue::N("2".into()));
        assert_eq!(item[EXPIRES_AT_MS], AttributeValue::N("1001".into()));
    }

    #[test]
    fn an_item_with_a_missing_attribute_is_reported_as_corrupt_with_its_key() {
        let item: Item = HashMap::from([(PK.to_owned(), AttributeValue::S("c#abc".into()))]);

        let error = connection_from(&item, OWNER).expect_err("corrupt");

        assert_eq!(
            error.to_string(),
            "corrupt item c#abc: no string attribute `owner`"
        );
    }
}
