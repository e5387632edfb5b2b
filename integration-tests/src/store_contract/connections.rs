//! Saving, reading, expiring and deleting connections.

use super::*;

/// A saved connection comes back whole from `get`.
pub async fn a_saved_connection_is_read_back(store: Store) {
    let connection = open("c1", "ana");

    store.save(&connection).await.expect("save");

    assert_eq!(
        store.get(&id("c1"), NOW).await.expect("get"),
        Some(connection)
    );
}

/// The grants a token carried come back with the connection (an empty list stays empty,
/// which grants nothing, unlike no list at all).
pub async fn a_connection_keeps_the_topic_grants_of_its_token(store: Store) {
    let grants = TopicGrants::parse(["room:*", "ticker:AAPL", "*"]).expect("valid");
    let granted = open("c1", "ana").with_grants(Some(grants));
    let none = open("c2", "ana").with_grants(Some(TopicGrants::default()));
    save_all(&store, &[granted.clone(), none.clone()]).await;

    let read = store.get(&id("c1"), NOW).await.expect("get");
    let read_none = store.get(&id("c2"), NOW).await.expect("get");

    assert_eq!(read, Some(granted));
    assert_eq!(read_none, Some(none));
    assert!(read.and_then(|c| c.grants().cloned()).is_some());
}

/// `get` of a connection never saved is `None`, not an error.
pub async fn an_unknown_connection_reads_as_none(store: Store) {
    assert_eq!(store.get(&id("nobody"), NOW).await.expect("get"), None);
}

/// Past its expiry a connection is invisible to every read, although nothing deleted it.
pub async fn an_expired_connection_is_never_read(store: Store) {
    let stale = expired("stale", "ana");
    save_all(&store, &[stale.clone(), open("fresh", "ana")]).await;
    let just_before = Timestamp::from_unix_millis(NOW.unix_millis() - 1);

    let before = store.get(&id("stale"), just_before).await.expect("get");
    let at_expiry = store.get(&id("stale"), NOW).await.expect("get");

    assert_eq!(before, Some(stale));
    assert_eq!(at_expiry, None);
    assert_eq!(
        read_sorted(&store, Source::User(user("ana")), 10).await,
        ["fresh"]
    );
    assert_eq!(
        read_sorted(&store, Source::All(Segment::WHOLE), 10).await,
        ["fresh"]
    );
    assert_eq!(
        read_sorted(&store, Source::Connections(vec![id("stale")]), 10).await,
        Vec::<String>::new()
    );
}

/// Saving a connection ID again replaces it, user included.
pub async fn saving_again_moves_the_connection_to_its_new_user(store: Store) {
    store.save(&open("c1", "ana")).await.expect("save");

    store.save(&open("c1", "bob")).await.expect("save again");

    assert!(
        read_all(&store, Source::User(user("ana")), 10)
            .await
            .is_empty()
    );
    assert_eq!(
        read_all(&store, Source::User(user("bob")), 10).await,
        ["c1"]
    );
}

/// Deleting a connection removes it and all its subscriptions, and nothing else.
pub async fn deleting_removes_the_connection_and_every_subscription(store: Store) {
    let gone = open("gone", "ana");
    let kept = open("kept", "ana");
    save_all(&store, &[gone.clone(), kept.clone()]).await;
    subscribe(&store, &gone, &["room:1", "room:2", "user:ana"]).await;
    subscribe(&store, &kept, &["room:1"]).await;

    assert_eq!(
        store.delete(&id("gone")).await.expect("delete"),
        Deletion::Removed
    );

    assert_eq!(store.get(&id("gone"), NOW).await.expect("get"), None);
    assert!(
        store
            .subscriptions(&id("gone"))
            .await
            .expect("subs")
            .is_empty()
    );
    assert_eq!(
        read_all(&store, Source::Topic(topic("room:1")), 10).await,
        ["kept"]
    );
    assert!(
        read_all(&store, Source::Topic(topic("room:2")), 10)
            .await
            .is_empty()
    );
    assert_eq!(
        read_all(&store, Source::User(user("ana")), 10).await,
        ["kept"]
    );
    assert_eq!(
        store.subscriptions(&id("kept")).await.expect("subs"),
        [topic("room:1")]
    );
}

/// Deleting twice, or deleting what never existed, succeeds; only the delete that removed
/// the connection says so.
pub async fn deleting_is_idempotent(store: Store) {
    store.save(&open("c1", "ana")).await.expect("save");

    let first = store.delete(&id("c1")).await.expect("first delete");
    let second = store.delete(&id("c1")).await.expect("second delete");
    let unknown = store.delete(&id("never")).await.expect("unknown delete");

    assert_eq!(
        (first, second, unknown),
        (
            Deletion::Removed,
            Deletion::AlreadyGone,
            Deletion::AlreadyGone
        )
    );
    assert_eq!(store.get(&id("c1"), NOW).await.expect("get"), None);
}

/// Of 8 concurrent deletes of one connection (8 pushes finding it gone at once), exactly
/// one removed it, for each of 10 connections; nothing of them is left.
pub async fn of_concurrent_deletes_exactly_one_removes_the_connection(store: Store) {
    let connections: Vec<Connection> = (0..10)
        .map(|i| open(&format!("twice-{i}"), "ana"))
        .collect();
    save_all(&store, &connections).await;
    for connection in &connections {
        subscribe(&store, connection, &["room:1", "room:2"]).await;
    }

    let rounds = connections.iter().map(|connection| {
        let store = Arc::clone(&store);
        async move {
            let deletes = (0..8).map(|_| store.delete(connection.id()));
            futures::future::join_all(deletes)
                .await
                .into_iter()
                .map(|deleted| deleted.expect("delete"))
                .filter(|deleted| *deleted == Deletion::Removed)
                .count()
        }
    });
    let removed = futures::future::join_all(rounds).await;

    assert_eq!(
        removed,
        vec![1; connections.len()],
        "removals per connection"
    );
    for connection in &connections {
        assert_eq!(store.get(connection.id(), NOW).await.expect("get"), None);
        assert!(
            store
                .subscriptions(connection.id())
                .await
                .expect("subs")
                .is_empty()
        );
    }
    assert!(
        read_all(&store, Source::Topic(topic("room:1")), 10)
            .await
            .is_empty()
    );
}
