//! Targeting invariants as properties, over random stores and random requests, through the
//! real push service and the in-memory store (pages of 3, so reads cross pages):
//!
//! - every connection in the audience gets the request exactly once, however many of its
//!   sources name it (deduplication);
//! - an excluded user's or connection's sockets never get it, even when named (exclusion wins
//!   over inclusion);
//! - a broadcast reaches every live connection but the excluded ones.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use proptest::prelude::*;
use serde_json::json;
use wspush_adapters::MemoryStore;
use wspush_domain::{Connection, ConnectionId, NotificationRequest};
use wspush_ports::{ConnectionGateway, ConnectionInfo, ConnectionStore, GatewayError, PushService};

use crate::helpers::{NOW, clock, config, id, subscribe, user};

const USERS: usize = 5;
const TOPICS: usize = 4;

/// Connection `c<i>` belongs to user `u<owner>` and subscribes to topics `t<j>`.
#[derive(Debug, Clone)]
struct World {
    connections: Vec<(usize, BTreeSet<usize>)>,
}

#[derive(Debug, Clone)]
struct Ask {
    users: Vec<usize>,
    topics: Vec<usize>,
    /// Indices into the world's connections; past its end, connections that do not exist.
    connections: Vec<usize>,
    exclude_users: Vec<usize>,
    exclude_connections: Vec<usize>,
}

fn world() -> impl Strategy<Value = World> {
    prop::collection::vec(
        (0..USERS, prop::collection::btree_set(0..TOPICS, 0..=TOPICS)),
        0..30,
    )
    .prop_map(|connections| World { connections })
}

fn ask() -> impl Strategy<Value = Ask> {
    let some = |max: usize, len: usize| prop::collection::vec(0..max, 0..len);
    (
        some(USERS, 4),
        some(TOPICS, 4),
        some(34, 6),
        some(USERS, 3),
        some(34, 4),
    )
        .prop_map(
            |(users, topics, connections, exclude_users, exclude_connections)| Ask {
                users,
                topics,
                connections,
                exclude_users,
                exclude_connections,
            },
        )
}

impl Ask {
    fn request(&self) -> NotificationRequest {
        let names = |prefix: &str, list: &[usize]| -> Vec<String> {
            list.iter().map(|i| format!("{prefix}{i}")).collect()
        };
        // Lists that are given are given whole, empty ones included (they name nobody); an
        // ask that names no one is a broadcast, which must say so.
        let mut json = json!({
            "exclude_users": names("u", &self.exclude_users),
            "exclude_connections": names("c", &self.exclude_connections),
            "data": {"n": 1},
        });
        if self.is_broadcast() {
            json["broadcast"] = json!(true);
        } else {
            json["users"] = json!(names("u", &self.users));
            json["topics"] = json!(names("t", &self.topics));
            json["connections"] = json!(names("c", &self.connections));
        }
        NotificationRequest::parse(&json.to_string()).expect("a valid request")
    }

    fn is_broadcast(&self) -> bool {
        self.users.is_empty() && self.topics.is_empty() && self.connections.is_empty()
    }

    /// The connections that must get the request, worked out the slow, obvious way.
    fn expected(&self, world: &World) -> BTreeSet<String> {
        let included = |index: usize, owner: usize, topics: &BTreeSet<usize>| {
            self.is_broadcast()
                || self.users.contains(&owner)
                || self.topics.iter().any(|topic| topics.contains(topic))
                || self.connections.contains(&index)
        };
        world
            .connections
            .iter()
            .enumerate()
            .filter(|(index, (owner, topics))| included(*index, *owner, topics))
            .filter(|(index, (owner, _))| {
                !self.exclude_users.contains(owner) && !self.exclude_connections.contains(index)
            })
            .map(|(index, _)| format!("c{index}"))
            .collect()
    }
}

/// Records every post.
#[derive(Default)]
struct Recorder(Mutex<Vec<ConnectionId>>);

#[async_trait]
impl ConnectionGateway for Recorder {
    async fn post(&self, connection: &ConnectionId, _: Bytes) -> Result<(), GatewayError> {
        self.0.lock().expect("lock").push(connection.clone());
        Ok(())
    }

    async fn delete(&self, _: &ConnectionId) -> Result<(), GatewayError> {
        Ok(())
    }

    async fn get(&self, _: &ConnectionId) -> Result<ConnectionInfo, GatewayError> {
        Err(GatewayError::Gone)
    }
}

/// How many posts each connection got.
async fn push(world: &World, ask: &Ask) -> (BTreeMap<String, usize>, usize) {
    let store = Arc::new(MemoryStore::new());
    for (index, (owner, topics)) in world.connections.iter().enumerate() {
        let name = format!("c{index}");
        let connection = Connection::open(id(&name), user(&format!("u{owner}")), NOW);
        store.save(&connection).await.expect("save");
        let topics: Vec<String> = topics.iter().map(|t| format!("t{t}")).collect();
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        if !topics.is_empty() {
            subscribe(&store, &name, &topics).await;
        }
    }
    let gateway = Arc::new(Recorder::default());
    let service = PushService::new(store, Arc::clone(&gateway), clock(), config()).expect("config");

    let report = service.push(&ask.request()).await;

    let mut counts = BTreeMap::new();
    for connection in gateway.0.lock().expect("lock").iter() {
        *counts.entry(connection.to_string()).or_insert(0) += 1;
    }
    (counts, report.delivered)
}

fn run<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
        .block_on(future)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn each_connection_in_the_audience_gets_the_request_exactly_once(
        world in world(),
        ask in ask(),
    ) {
        let (counts, delivered) = run(push(&world, &ask));

        let expected = ask.expected(&world);
        let got: BTreeSet<String> = counts.keys().cloned().collect();
        prop_assert_eq!(&got, &expected);
        prop_assert!(counts.values().all(|&n| n == 1), "duplicates: {:?}", counts);
        prop_assert_eq!(delivered, expected.len());
    }

    #[test]
    fn exclusion_wins_over_every_way_of_being_named(
        world in world(),
        mut ask in ask(),
        excluded in 0..USERS,
    ) {
        // Name the excluded user every way there is, then exclude them.
        ask.users.push(excluded);
        ask.connections.extend(
            world.connections.iter().enumerate()
                .filter(|(_, (owner, _))| *owner == excluded)
                .map(|(index, _)| index),
        );
        ask.topics.extend(0..TOPICS);
        ask.exclude_users.push(excluded);

        let (counts, _) = run(push(&world, &ask));

        for (index, (owner, _)) in world.connections.iter().enumerate() {
            let name = format!("c{index}");
            let excluded_here = *owner == excluded || ask.exclude_connections.contains(&index);
            prop_assert!(!(excluded_here && counts.contains_key(&name)), "{} got it", name);
        }
    }

    #[test]
    fn a_broadcast_covers_every_connection_but_the_excluded(
        world in world(),
        exclude_users in prop::collection::vec(0..USERS, 0..3),
        exclude_connections in prop::collection::vec(0..34usize, 0..4),
    ) {
        let ask = Ask {
            users: vec![],
            topics: vec![],
            connections: vec![],
            exclude_users,
            exclude_connections,
        };

        let (counts, delivered) = run(push(&world, &ask));

        let everyone_else: BTreeSet<String> = world.connections.iter().enumerate()
            .filter(|(index, (owner, _))| {
                !ask.exclude_users.contains(owner) && !ask.exclude_connections.contains(index)
            })
            .map(|(index, _)| format!("c{index}"))
            .collect();
        prop_assert_eq!(counts.keys().cloned().collect::<BTreeSet<_>>(), everyone_else.clone());
        prop_assert_eq!(delivered, everyone_else.len());
    }
}
