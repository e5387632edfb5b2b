//! The DynamoDB connection store.
//!
//! # Table design
//!
//! One table, two sparse global secondary indexes. Every item has the key `pk` + `sk`:
//!
//! | item | `pk` | `sk` | other attributes |
//! |---|---|---|---|
//! | connection | `c#<connection id>` | `conn` | `owner` (user), `connected_at`, `expires_at_ms`, `ttl`, `grants` (a list of strings, only when the token limited its topics), `subs` (how many subscription items it has; absent before the first subscribe) |
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
//! | delete a connection with its subscriptions | `DeleteItem` of the connection item first (a racing subscribe then fails its check), then `Query` `pk = c#id` (consistent) and `BatchWriteItem` deletes of what is left, 25 per call, retrying `UnprocessedItems` |
//! | subscribe | `Query` of what it holds (by the service), then `TransactWriteItems`: an `Update` of the connection's `subs` by the number of new topics, on condition that it exists, is live and holds at most `max - n`, and one `Put` per topic on condition that it does not exist (99 per transaction); a topic already held is dropped and the rest retried, a `TransactionConflict` retried after a random pause; a failed count is explained by a `GetItem` (gone, or the limit) |
//! | unsubscribe | `Query` of what it holds, then `TransactWriteItems`: an `Update` taking the number deleted off `subs`, and one `Delete` per held topic on condition that it exists (`BatchWriteItem` deletes when the connection is gone) |
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
//!
//! # Where each part lives
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the store's handle ([`DynamoDbStore`]) and where its table is named |
//! | `table.rs` | the schema: creating the table, its indexes and TTL |
//! | `items.rs` | attribute names, keys, and mapping items to and from the domain's types |
//! | `cursor.rs` | the cursor format (a `LastEvaluatedKey` as text) |
//! | `store.rs` | the [`ConnectionStore`](wspush_ports::ConnectionStore) port: writes and audience reads |
//! | `subscriptions.rs` | subscribe and unsubscribe, keeping the connection's count exact |
//! | `ledger.rs` | the [`RequestLedger`](wspush_ports::RequestLedger) port |
//! | `batch.rs` | batch writes and reads, retrying unprocessed entries with backoff |
//! | `errors.rs` | SDK errors mapped onto the port's [`StoreError`](wspush_ports::StoreError) |

mod batch;
mod cursor;
mod errors;
mod history;
mod items;
mod ledger;
mod presence;
mod store;
mod subscriptions;
mod table;

use aws_sdk_dynamodb::Client;

pub use items::{BY_TOPIC, BY_USER, TTL};

/// A [`ConnectionStore`](wspush_ports::ConnectionStore) on one DynamoDB table (see the module docs for its design).
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
}
