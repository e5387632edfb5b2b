//! Presence: a join when a user's first connection enters a topic, a leave when the last
//! one exits, each decided once however the calls race.

use std::sync::Arc;

use futures::future::join_all;
use tokio::sync::Barrier;
use wspush_ports::{PresenceStore, Transition};

use super::*;

/// The store under test, behind the presence port.
pub type Presences = Arc<dyn PresenceStore>;

async fn enter(presence: &Presences, at: &str, who: &str, connection: &str) -> Transition {
    presence
        .enter(&topic(at), &user(who), &id(connection), NOW)
        .await
        .expect("enter")
}

async fn exit(presence: &Presences, at: &str, who: &str, connection: &str) -> Transition {
    presence
        .exit(&topic(at), &user(who), &id(connection))
        .await
        .expect("exit")
}

async fn present(presence: &Presences, at: &str, who: &str) -> BTreeSet<String> {
    presence
        .present(&topic(at), &user(who))
        .await
        .expect("present")
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn count(transitions: &[Transition], which: Transition) -> usize {
    transitions.iter().filter(|seen| **seen == which).count()
}

/// The first connection joins, the last one leaves, and repeats change nothing.
pub async fn the_first_connection_of_a_user_joins_and_the_last_one_leaves(
    _: Store,
    presence: Presences,
) {
    assert_eq!(
        enter(&presence, "room:1", "ana", "c1").await,
        Transition::Joined
    );
    assert_eq!(
        enter(&presence, "room:1", "ana", "c2").await,
        Transition::Unchanged
    );
    assert_eq!(
        enter(&presence, "room:1", "ana", "c1").await,
        Transition::Unchanged
    );
    assert_eq!(
        enter(&presence, "room:1", "bo", "c3").await,
        Transition::Joined,
        "another user"
    );
    assert_eq!(
        enter(&presence, "room:2", "ana", "c1").await,
        Transition::Joined,
        "another topic"
    );
    assert_eq!(
        present(&presence, "room:1", "ana").await,
        BTreeSet::from(["c1".to_owned(), "c2".to_owned()])
    );

    assert_eq!(
        exit(&presence, "room:1", "ana", "c1").await,
        Transition::Unchanged
    );
    assert_eq!(
        exit(&presence, "room:1", "ana", "c1").await,
        Transition::Unchanged,
        "again"
    );
    assert_eq!(
        exit(&presence, "room:1", "ana", "c9").await,
        Transition::Unchanged,
        "never in"
    );
    assert_eq!(
        exit(&presence, "room:1", "ana", "c2").await,
        Transition::Left
    );
    assert_eq!(
        exit(&presence, "room:1", "ana", "c2").await,
        Transition::Unchanged
    );
    assert!(present(&presence, "room:1", "ana").await.is_empty());
    assert_eq!(
        exit(&presence, "room:3", "ana", "c1").await,
        Transition::Unchanged,
        "no record"
    );

    assert_eq!(
        enter(&presence, "room:1", "ana", "c4").await,
        Transition::Joined,
        "back again"
    );
    assert_eq!(
        present(&presence, "room:2", "ana").await,
        BTreeSet::from(["c1".to_owned()])
    );
}

/// Eight tasks of one user: entering together joins once, exiting together leaves once,
/// ten rounds running; eight exits of one connection (a disconnect and prunes) leave once;
/// and exits racing entries of other connections leave and join at most once each.
pub async fn eight_concurrent_tasks_see_each_join_and_leave_once(_: Store, presence: Presences) {
    const TASKS: usize = 8;
    for round in 0..10 {
        let barrier = Arc::new(Barrier::new(TASKS));
        let entered = join_all((0..TASKS).map(|task| {
            let (presence, barrier) = (Arc::clone(&presence), Arc::clone(&barrier));
            async move {
                barrier.wait().await;
                enter(&presence, "room:1", "ana", &format!("c{round}-{task}")).await
            }
        }))
        .await;
        assert_eq!(
            count(&entered, Transition::Joined),
            1,
            "round {round}: {entered:?}"
        );
        let exited = join_all((0..TASKS).map(|task| {
            let (presence, barrier) = (Arc::clone(&presence), Arc::clone(&barrier));
            async move {
                barrier.wait().await;
                exit(&presence, "room:1", "ana", &format!("c{round}-{task}")).await
            }
        }))
        .await;
        assert_eq!(
            count(&exited, Transition::Left),
            1,
            "round {round}: {exited:?}"
        );
        assert!(present(&presence, "room:1", "ana").await.is_empty());
    }

    assert_eq!(
        enter(&presence, "room:2", "ana", "only").await,
        Transition::Joined
    );
    let barrier = Arc::new(Barrier::new(TASKS));
    let exited = join_all((0..TASKS).map(|_| {
        let (presence, barrier) = (Arc::clone(&presence), Arc::clone(&barrier));
        async move {
            barrier.wait().await;
            exit(&presence, "room:2", "ana", "only").await
        }
    }))
    .await;
    assert_eq!(count(&exited, Transition::Left), 1, "{exited:?}");

    for task in 0..TASKS / 2 {
        let _ = enter(&presence, "room:3", "ana", &format!("old{task}")).await;
    }
    let barrier = Arc::new(Barrier::new(TASKS));
    let seen = join_all((0..TASKS).map(|task| {
        let (presence, barrier) = (Arc::clone(&presence), Arc::clone(&barrier));
        async move {
            barrier.wait().await;
            if task % 2 == 0 {
                exit(&presence, "room:3", "ana", &format!("old{}", task / 2)).await
            } else {
                enter(&presence, "room:3", "ana", &format!("new{}", task / 2)).await
            }
        }
    }))
    .await;
    // The set empties at most once (once a new connection is in, only old ones leave).
    let (joins, leaves) = (
        count(&seen, Transition::Joined),
        count(&seen, Transition::Left),
    );
    assert_eq!(joins, leaves, "{seen:?}");
    assert!(joins <= 1, "{seen:?}");
    assert_eq!(
        present(&presence, "room:3", "ana").await,
        (0..TASKS / 2).map(|task| format!("new{task}")).collect(),
    );
}

/// Presence records are no connections: they never appear in an audience.
pub async fn presence_never_appears_in_an_audience(store: Store, presence: Presences) {
    let _ = enter(&presence, "room:1", "ana", "c1").await;
    assert!(
        read_all(&store, Source::Topic(topic("room:1")), 10)
            .await
            .is_empty()
    );
    assert!(
        read_all(&store, Source::User(user("ana")), 10)
            .await
            .is_empty()
    );
    assert!(
        read_all(&store, Source::All(Segment::WHOLE), 10)
            .await
            .is_empty()
    );
}

/// The events a [`Presence`](wspush_ports::Presence) published, as `(user, topic, event)`.
#[derive(Default)]
struct Recorded(std::sync::Mutex<Vec<(String, String, String)>>);

#[async_trait]
impl wspush_ports::NotificationPublisher for Recorded {
    async fn publish(
        &self,
        request: &NotificationRequest,
    ) -> Result<wspush_ports::MessageId, wspush_ports::PublishError> {
        let data: serde_json::Value =
            serde_json::from_str(request.payload()).expect("an event is JSON");
        let event = &data["presence"];
        self.0.lock().expect("lock").push((
            event["user"].as_str().unwrap_or_default().to_owned(),
            event["topic"].as_str().unwrap_or_default().to_owned(),
            event["event"].as_str().unwrap_or_default().to_owned(),
        ));
        Ok(String::new())
    }

    async fn publish_batch(
        &self,
        requests: &[NotificationRequest],
    ) -> Vec<Result<wspush_ports::MessageId, wspush_ports::PublishError>> {
        let mut results = Vec::new();
        for request in requests {
            results.push(self.publish(request).await);
        }
        results
    }
}

fn rooms(store: Presences, recorded: &Arc<Recorded>) -> wspush_ports::Presence {
    wspush_ports::Presence::new(
        wspush_domain::PresencePolicy::new(["room"]).expect("valid"),
        store,
        Arc::clone(recorded) as Arc<dyn wspush_ports::NotificationPublisher>,
    )
    .expect("on")
}

fn seen(recorded: &Recorded) -> Vec<(String, String, String)> {
    recorded.0.lock().expect("lock").clone()
}

fn said(user: &str, topic: &str, event: &str) -> (String, String, String) {
    (user.to_owned(), topic.to_owned(), event.to_owned())
}

/// A `$disconnect` that ran between a subscribe's write and its entry (so it found nothing
/// to leave): the entry, made after, is taken back, and its join has its leave.
pub async fn an_entry_after_its_connection_was_removed_is_taken_back(
    store: Store,
    presence: Presences,
) {
    let recorded = Arc::new(Recorded::default());
    let rooms = rooms(presence.clone(), &recorded);
    let ana = open("c1", "ana");
    save_all(&store, std::slice::from_ref(&ana)).await;
    subscribe(&store, &ana, &["room:1"]).await; // the subscribe's write
    wspush_ports::ConnectionService::new(Arc::clone(&store), Arc::new(ManualClock::at(NOW)))
        .with_presence(Some(rooms.clone()))
        .disconnect(ana.id())
        .await
        .expect("disconnect");
    assert!(seen(&recorded).is_empty(), "nothing was entered yet");

    rooms
        .entered(store.as_ref(), &ana, &[topic("room:1")], NOW)
        .await
        .expect("entered");

    assert_eq!(
        seen(&recorded),
        [
            said("ana", "room:1", "join"),
            said("ana", "room:1", "leave")
        ]
    );
    assert!(present(&presence, "room:1", "ana").await.is_empty());
}

/// An unsubscribe that ran between a subscribe's write and its entry: the entry is taken
/// back, while the entries whose subscriptions stand stay.
pub async fn an_entry_whose_subscription_was_taken_meanwhile_is_taken_back(
    store: Store,
    presence: Presences,
) {
    let recorded = Arc::new(Recorded::default());
    let rooms = rooms(presence.clone(), &recorded);
    let ana = open("c1", "ana");
    save_all(&store, std::slice::from_ref(&ana)).await;
    subscribe(&store, &ana, &["room:2"]).await; // room:1's write was undone meanwhile

    rooms
        .entered(
            store.as_ref(),
            &ana,
            &[topic("room:1"), topic("room:2")],
            NOW,
        )
        .await
        .expect("entered");

    assert_eq!(
        seen(&recorded),
        [
            said("ana", "room:1", "join"),
            said("ana", "room:2", "join"),
            said("ana", "room:1", "leave")
        ]
    );
    assert!(present(&presence, "room:1", "ana").await.is_empty());
    assert_eq!(
        present(&presence, "room:2", "ana").await,
        BTreeSet::from(["c1".to_owned()])
    );
}

/// A user's connection that expired without a `$disconnect` is taken out before the user's
/// next connection enters: its leave, then the join.
pub async fn an_expired_connection_leaves_before_the_users_next_entry(
    store: Store,
    presence: Presences,
) {
    let recorded = Arc::new(Recorded::default());
    let rooms = rooms(presence.clone(), &recorded);
    let ghost = expired("ghost", "ana");
    let fresh = open("fresh", "ana");
    save_all(&store, &[ghost.clone(), fresh.clone()]).await;
    let _ = enter(&presence, "room:1", "ana", "ghost").await;
    subscribe(&store, &fresh, &["room:1"]).await;

    rooms
        .entered(store.as_ref(), &fresh, &[topic("room:1")], NOW)
        .await
        .expect("entered");

    assert_eq!(
        seen(&recorded),
        [
            said("ana", "room:1", "leave"),
            said("ana", "room:1", "join")
        ]
    );
    assert_eq!(
        present(&presence, "room:1", "ana").await,
        BTreeSet::from(["fresh".to_owned()])
    );
}
