//! The behaviour every [`ConnectionStore`] (and [`RequestLedger`]) must show, written once.
//!
//! Each case is a public async function taking a fresh, empty store. Adapters run the whole
//! suite with [`store_contract_tests!`](crate::store_contract_tests), which makes one
//! `#[tokio::test]` per case.

mod connections;
mod history;
mod ledger;
mod presence;
mod sources;
mod subscriptions;

pub use connections::*;
pub use history::*;
pub use ledger::*;
pub use presence::*;
pub use sources::*;
pub use subscriptions::*;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use wspush_adapters::ManualClock;
use wspush_domain::limits::MAX_CONNECTION_DURATION;
use wspush_domain::{
    Connection, ConnectionId, ExternalId, NotificationRequest, RequestId, Segment, Source,
    Timestamp, TopicGrants, UserId,
};
use wspush_ports::{
    Claim, ConnectionGateway, ConnectionInfo, ConnectionStore, Deletion, GatewayError,
    HistoryStore, PushConfig, PushService, RequestLedger, StoreError, stream_source,
};

/// The store under test, behind the port.
pub type Store = Arc<dyn ConnectionStore>;

/// The same store, behind the ledger port.
pub type Ledger = Arc<dyn RequestLedger>;

/// The same store, behind the history port.
pub type History = Arc<dyn HistoryStore>;

/// The time the suite runs at.
pub const NOW: Timestamp = Timestamp::from_unix_secs(1_800_000_000);

/// A store under test, and what to do when its test is over.
pub trait StoreFixture {
    /// The store.
    fn store(&self) -> Store;
    /// The same store as a request ledger.
    fn ledger(&self) -> Ledger;
    /// The same store as a history store.
    fn history(&self) -> History;
    /// The same store as a presence store.
    fn presence(&self) -> Presences;
    /// Cleans up after a passing test.
    fn finish(self) -> impl std::future::Future<Output = ()> + Send;
}

/// Generates one `#[tokio::test]` per contract case, each with a fresh [`StoreFixture`]
/// from `$factory` (an async fn).
#[macro_export]
macro_rules! store_contract_tests {
    ($factory:path) => {
        $crate::store_contract_tests!(@cases $factory;
            a_saved_connection_is_read_back,
            a_connection_keeps_the_topic_grants_of_its_token,
            an_unknown_connection_reads_as_none,
            an_expired_connection_is_never_read,
            saving_again_moves_the_connection_to_its_new_user,
            deleting_removes_the_connection_and_every_subscription,
            deleting_is_idempotent,
            of_concurrent_deletes_exactly_one_removes_the_connection,
            a_delete_racing_a_subscribe_leaves_no_subscription_behind,
            subscribing_an_unknown_connection_fails_and_writes_nothing,
            subscribing_an_expired_connection_fails,
            subscribing_twice_keeps_one_subscription,
            unsubscribing_removes_only_the_named_topics_and_is_idempotent,
            concurrent_subscribes_never_take_a_connection_over_its_limit,
            concurrent_subscribes_of_the_same_topics_count_them_once,
            unsubscribing_frees_room_under_the_limit,
            audience_reads_show_a_subscription_once_it_is_written,
            a_user_source_yields_only_that_users_live_connections,
            a_topic_source_yields_its_live_subscribers,
            explicit_connections_skip_unknown_and_expired_ones,
            a_user_with_many_connections_is_read_across_many_pages,
            a_topic_with_1200_subscribers_streams_each_once,
            broadcast_segments_partition_the_live_connections,
            a_broadcast_yields_each_connection_once_however_many_subscriptions_it_holds,
            a_broadcast_excluding_160_users_skips_exactly_their_connections,
            a_cursor_the_store_did_not_make_is_rejected,
            a_resumed_segment_read_continues_where_its_cursor_stopped,
        );
        $crate::store_contract_tests!(@ledger_cases $factory;
            a_new_request_is_claimed_and_a_second_claim_sees_it_in_progress,
            a_completed_request_is_reported_completed_until_its_record_expires,
            a_claim_whose_lease_ended_can_be_taken_over,
            releasing_frees_a_claim_but_never_a_completion,
            a_stale_release_never_drops_the_claim_that_took_over,
            of_concurrent_claims_of_one_request_exactly_one_wins,
            request_records_never_appear_in_an_audience,
        );
        $crate::store_contract_tests!(@history_cases $factory;
            a_stream_numbers_its_messages_from_1_and_reads_them_back_in_order,
            eight_concurrent_appenders_get_1_to_n_without_gap_or_repeat,
            a_request_appended_again_gets_its_first_position,
            a_request_redelivered_after_its_message_is_gone_is_not_appended_again,
            a_stream_keeps_its_latest_messages_and_a_position_before_them_is_a_gap,
            a_message_older_than_the_ttl_is_a_gap,
            a_stream_idle_past_its_ttl_starts_a_new_epoch,
            a_position_of_another_epoch_or_past_the_latest_is_a_gap,
            the_positions_of_a_message_of_several_streams_are_read_back,
            history_never_appears_in_an_audience,
        );
        $crate::store_contract_tests!(@presence_cases $factory;
            the_first_connection_of_a_user_joins_and_the_last_one_leaves,
            eight_concurrent_tasks_see_each_join_and_leave_once,
            presence_never_appears_in_an_audience,
            an_entry_after_its_connection_was_removed_is_taken_back,
            an_entry_whose_subscription_was_taken_meanwhile_is_taken_back,
            an_expired_connection_leaves_before_the_users_next_entry,
        );
    };
    (@presence_cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                use $crate::store_contract::StoreFixture as _;
                let fixture = $factory().await;
                $crate::store_contract::$case(fixture.store(), fixture.presence()).await;
                fixture.finish().await;
            }
        )*
    };
    (@history_cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                use $crate::store_contract::StoreFixture as _;
                let fixture = $factory().await;
                $crate::store_contract::$case(fixture.store(), fixture.history()).await;
                fixture.finish().await;
            }
        )*
    };
    (@ledger_cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                use $crate::store_contract::StoreFixture as _;
                let fixture = $factory().await;
                $crate::store_contract::$case(fixture.store(), fixture.ledger()).await;
                fixture.finish().await;
            }
        )*
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                use $crate::store_contract::StoreFixture as _;
                let fixture = $factory().await;
                $crate::store_contract::$case(fixture.store()).await;
                fixture.finish().await;
            }
        )*
    };
}

fn id(value: &str) -> ConnectionId {
    ConnectionId::parse(value).expect("valid connection ID")
}

fn user(value: &str) -> UserId {
    UserId::parse(value).expect("valid user ID")
}

fn topic(value: &str) -> ExternalId {
    ExternalId::parse(value).expect("valid external ID")
}

fn opened_at(connection: &str, owner: &str, at: Timestamp) -> Connection {
    Connection::open(id(connection), user(owner), at)
}

fn open(connection: &str, owner: &str) -> Connection {
    opened_at(connection, owner, NOW)
}

/// A connection whose 2 hours ran out exactly at [`NOW`].
fn expired(connection: &str, owner: &str) -> Connection {
    let opened = NOW.unix_millis() - MAX_CONNECTION_DURATION.as_millis() as u64;
    opened_at(connection, owner, Timestamp::from_unix_millis(opened))
}

async fn save_all(store: &Store, connections: &[Connection]) {
    for connection in connections {
        store.save(connection).await.expect("save");
    }
}

async fn subscribe(store: &Store, connection: &Connection, topics: &[&str]) {
    let topics: Vec<ExternalId> = topics.iter().map(|t| topic(t)).collect();
    store
        .subscribe(connection, &topics, NOW)
        .await
        .expect("subscribe");
}

/// Every connection ID a source yields over all its pages, in the order read.
async fn read_all(store: &Store, source: Source, limit: usize) -> Vec<String> {
    let pages: Vec<Vec<Connection>> = stream_source(Arc::clone(store), source, limit, NOW)
        .try_collect()
        .await
        .expect("read");
    pages
        .into_iter()
        .flatten()
        .map(|connection| connection.id().to_string())
        .collect()
}

async fn read_sorted(store: &Store, source: Source, limit: usize) -> Vec<String> {
    let mut ids = read_all(store, source, limit).await;
    ids.sort();
    ids
}

fn names(prefix: &str, count: usize) -> Vec<String> {
    let mut names: Vec<String> = (0..count).map(|i| format!("{prefix}{i:04}")).collect();
    names.sort();
    names
}
