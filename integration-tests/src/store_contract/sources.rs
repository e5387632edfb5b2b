//! Reading audiences: users, topics, explicit connections, broadcast segments, pages and cursors.

use super::*;

/// A user's source holds their live connections and no one else's.
pub async fn a_user_source_yields_only_that_users_live_connections(store: Store) {
    save_all(
        &store,
        &[
            open("a1", "ana"),
            open("a2", "ana"),
            expired("a3", "ana"),
            open("b1", "bob"),
        ],
    )
    .await;

    assert_eq!(
        read_sorted(&store, Source::User(user("ana")), 10).await,
        ["a1", "a2"]
    );
    assert!(
        read_all(&store, Source::User(user("cy")), 10)
            .await
            .is_empty()
    );
}

/// A topic's source holds its live subscribers, with their users.
pub async fn a_topic_source_yields_its_live_subscribers(store: Store) {
    let a = open("a", "ana");
    let b = open("b", "bob");
    let c = open("c", "cy");
    save_all(&store, &[a.clone(), b.clone(), c.clone()]).await;
    subscribe(&store, &a, &["room:1"]).await;
    subscribe(&store, &b, &["room:1", "room:2"]).await;
    subscribe(&store, &c, &["room:2"]).await;

    let pages: Vec<Vec<Connection>> =
        stream_source(Arc::clone(&store), Source::Topic(topic("room:1")), 10, NOW)
            .try_collect()
            .await
            .expect("read");
    let mut read: Vec<Connection> = pages.into_iter().flatten().collect();
    read.sort_by(|x, y| x.id().cmp(y.id()));

    assert_eq!(read, [a, b]);
}

/// Explicit connection IDs yield those that are live, once each.
pub async fn explicit_connections_skip_unknown_and_expired_ones(store: Store) {
    save_all(
        &store,
        &[open("c1", "ana"), expired("c2", "ana"), open("c3", "bob")],
    )
    .await;

    let read = read_sorted(
        &store,
        Source::Connections(vec![id("c1"), id("c2"), id("c3"), id("ghost")]),
        2,
    )
    .await;

    assert_eq!(read, ["c1", "c3"]);
}

/// Pagination: a small page limit still yields every connection exactly once.
pub async fn a_user_with_many_connections_is_read_across_many_pages(store: Store) {
    let ids = names("c", 45);
    let connections: Vec<Connection> = ids.iter().map(|c| open(c, "ana")).collect();
    save_all(&store, &connections).await;

    let read = read_all(&store, Source::User(user("ana")), 4).await;

    let mut sorted = read.clone();
    sorted.sort();
    assert_eq!(read.len(), 45, "no connection twice");
    assert_eq!(sorted, ids);
}

/// 1,200 subscribers of one topic stream out, each once, in pages.
pub async fn a_topic_with_1200_subscribers_streams_each_once(store: Store) {
    let ids = names("s", 1_200);
    for (n, connection) in ids.iter().enumerate() {
        let connection = open(connection, &format!("u{}", n % 300));
        store.save(&connection).await.expect("save");
        subscribe(&store, &connection, &["ticker:AAPL"]).await;
    }

    let read = read_all(&store, Source::Topic(topic("ticker:AAPL")), 250).await;

    let mut sorted = read.clone();
    sorted.sort();
    assert_eq!(read.len(), 1_200);
    assert_eq!(sorted, ids);
}

/// The segments of a broadcast split the live connections between them, with no overlap
/// and nothing left out.
pub async fn broadcast_segments_partition_the_live_connections(store: Store) {
    let ids = names("b", 300);
    let mut connections: Vec<Connection> = ids
        .iter()
        .enumerate()
        .map(|(n, c)| open(c, &format!("u{}", n % 40)))
        .collect();
    connections.push(expired("old", "u1"));
    save_all(&store, &connections).await;

    let mut all = Vec::new();
    for segment in Segment::all(4).expect("valid") {
        all.extend(read_all(&store, Source::All(segment), 16).await);
    }

    all.sort();
    assert_eq!(all, ids);
}

/// A broadcast reads connections, not subscriptions: a connection holding many
/// subscriptions is still read once.
pub async fn a_broadcast_yields_each_connection_once_however_many_subscriptions_it_holds(
    store: Store,
) {
    let ids = names("c", 20);
    for connection in &ids {
        let connection = open(connection, "ana");
        store.save(&connection).await.expect("save");
        subscribe(&store, &connection, &["t1", "t2", "t3", "t4", "user:ana"]).await;
    }

    let read = read_sorted(&store, Source::All(Segment::WHOLE), 7).await;

    assert_eq!(read, ids);
}

/// Exclusions have no 100-value limit: a broadcast through the push service, excluding 160
/// users, skips exactly their connections.
pub async fn a_broadcast_excluding_160_users_skips_exactly_their_connections(store: Store) {
    let connections: Vec<Connection> = (0..400)
        .map(|n| open(&format!("c{n:03}"), &format!("u{}", n % 200)))
        .collect();
    save_all(&store, &connections).await;
    let excluded: Vec<String> = (0..160).map(|n| format!("\"u{n}\"")).collect();
    let request = NotificationRequest::parse(&format!(
        r#"{{"exclude_users":[{}],"data":{{"k":1}}}}"#,
        excluded.join(",")
    ))
    .expect("valid");
    let gateway = Arc::new(CountingGateway::default());
    let push = PushService::new(
        Arc::clone(&store),
        Arc::clone(&gateway),
        Arc::new(ManualClock::at(NOW)),
        PushConfig {
            page_size: 64,
            ..PushConfig::default()
        },
    )
    .expect("config");

    let report = push.push(&request).await;

    assert_eq!(report.excluded, 320);
    assert_eq!(report.delivered, 80);
    assert_eq!(gateway.posts.load(Ordering::SeqCst), 80);
    assert!(report.is_complete(), "{report:?}");
}

/// A cursor that is not one of the store's is an error, not a silent restart.
pub async fn a_cursor_the_store_did_not_make_is_rejected(store: Store) {
    store.save(&open("c1", "ana")).await.expect("save");

    let result = store
        .page(
            &Source::All(Segment::WHOLE),
            Some(wspush_ports::Cursor::new("{not a cursor")),
            10,
            NOW,
        )
        .await;

    assert!(
        matches!(result, Err(StoreError::InvalidCursor(_))),
        "{result:?}"
    );
}

/// A cursor carried in a continuation resumes a segment with nothing lost or repeated.
pub async fn a_resumed_segment_read_continues_where_its_cursor_stopped(store: Store) {
    let connections: Vec<Connection> = names("c", 40).iter().map(|c| open(c, "ana")).collect();
    save_all(&store, &connections).await;
    let segment = Source::All(Segment::new(1, 2).expect("valid"));
    let first = store
        .page(&segment, None, 5, NOW)
        .await
        .expect("first page");
    let cursor = first.next.clone().expect("more pages");

    // A cursor is plain text: it travels in a continuation message and comes back.
    let resumed: Vec<String> = stream_from(&store, segment.clone(), Some(cursor)).await;

    let mut seen: Vec<String> = first
        .connections
        .iter()
        .map(|c| c.id().to_string())
        .chain(resumed)
        .collect();
    let total = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), total, "a connection was read twice");
    assert_eq!(seen, read_sorted(&store, segment, 100).await);
}

async fn stream_from(
    store: &Store,
    source: Source,
    mut cursor: Option<wspush_ports::Cursor>,
) -> Vec<String> {
    let mut ids = Vec::new();
    loop {
        let page = store.page(&source, cursor, 7, NOW).await.expect("page");
        ids.extend(page.connections.iter().map(|c| c.id().to_string()));
        match page.next {
            Some(next) => cursor = Some(wspush_ports::Cursor::new(next.as_str().to_owned())),
            None => return ids,
        }
    }
}

/// A gateway that accepts every post and counts them.
#[derive(Default)]
struct CountingGateway {
    posts: AtomicUsize,
}

#[async_trait]
impl ConnectionGateway for CountingGateway {
    async fn post(&self, _: &ConnectionId, _: Bytes) -> Result<(), GatewayError> {
        self.posts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn delete(&self, _: &ConnectionId) -> Result<(), GatewayError> {
        Ok(())
    }

    async fn get(&self, _: &ConnectionId) -> Result<ConnectionInfo, GatewayError> {
        Err(GatewayError::Gone)
    }
}
