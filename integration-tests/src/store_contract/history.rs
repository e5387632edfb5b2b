//! Stream history: gap-free numbering under concurrency, redeliveries, trimming by size and
//! age, and epochs.

use std::time::Duration;

use wspush_domain::{Epoch, Position, Retention};
use wspush_ports::{HistoryRead, Recorded};

use super::*;

fn retention(size: u32) -> Retention {
    Retention {
        ttl: Duration::from_secs(60),
        size,
        marks: Duration::from_secs(600),
    }
}

fn later(seconds: u64) -> Timestamp {
    NOW.saturating_add(Duration::from_secs(seconds))
}

async fn append(history: &History, stream: &str, data: &str, size: u32) -> Position {
    history
        .append(&topic(stream), None, data, retention(size), NOW)
        .await
        .expect("append")
        .position
}

async fn read(history: &History, stream: &str, after: &Position, size: u32) -> HistoryRead {
    history
        .read_after(&topic(stream), after, retention(size), NOW)
        .await
        .expect("read")
}

fn seqs(read: &HistoryRead) -> Vec<u64> {
    match read {
        HistoryRead::Messages(messages) => messages.iter().map(|m| m.position.seq).collect(),
        HistoryRead::Gap => panic!("a gap where messages were expected"),
    }
}

fn at(seq: u64, epoch: &Epoch) -> Position {
    Position {
        seq,
        epoch: epoch.clone(),
    }
}

/// Each stream counts from 1 in its own epoch, and a read returns what followed, in order.
pub async fn a_stream_numbers_its_messages_from_1_and_reads_them_back_in_order(
    _: Store,
    history: History,
) {
    let first = append(&history, "room:1", r#"{"n":1}"#, 100).await;
    let second = append(&history, "room:1", r#"{"n":2}"#, 100).await;
    let third = append(&history, "room:1", r#"{"n":3}"#, 100).await;
    let other = append(&history, "room:2", r#"{"n":1}"#, 100).await;

    assert_eq!([first.seq, second.seq, third.seq], [1, 2, 3]);
    assert_eq!(first.epoch, third.epoch);
    assert_eq!(other.seq, 1);
    let HistoryRead::Messages(messages) = read(&history, "room:1", &at(1, &first.epoch), 100).await
    else {
        panic!("a gap");
    };
    let data: Vec<&str> = messages.iter().map(|m| m.data.as_str()).collect();
    assert_eq!(data, [r#"{"n":2}"#, r#"{"n":3}"#]);
    assert_eq!(messages[0].position, second);
    assert_eq!(
        seqs(&read(&history, "room:1", &third, 100).await),
        Vec::<u64>::new()
    );
    assert_eq!(
        seqs(&read(&history, "room:1", &at(0, &first.epoch), 100).await),
        [1, 2, 3]
    );
}

/// 8 tasks appending 10 messages each to one stream get 1..80, each once.
pub async fn eight_concurrent_appenders_get_1_to_n_without_gap_or_repeat(
    _: Store,
    history: History,
) {
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let history = Arc::clone(&history);
            tokio::spawn(async move {
                let mut positions = Vec::new();
                for n in 0..10 {
                    let data = format!(r#"{{"task":{task},"n":{n}}}"#);
                    positions.push(append(&history, "room:busy", &data, 100).await);
                }
                positions
            })
        })
        .collect();
    let mut positions = Vec::new();
    for task in tasks {
        positions.extend(task.await.expect("task"));
    }

    let epoch = positions[0].epoch.clone();
    assert!(positions.iter().all(|position| position.epoch == epoch));
    let mut numbers: Vec<u64> = positions.iter().map(|position| position.seq).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=80).collect::<Vec<u64>>());
    let read = read(&history, "room:busy", &at(0, &epoch), 100).await;
    assert_eq!(seqs(&read), (1..=80).collect::<Vec<u64>>());
}

/// A request appended again (a redelivery) gets its first position and appends nothing.
pub async fn a_request_appended_again_gets_its_first_position(_: Store, history: History) {
    let stream = topic("room:1");
    let id = RequestId::parse("m-1").expect("valid");
    let other = RequestId::parse("m-2").expect("valid");

    let first = history
        .append(&stream, Some(&id), "1", retention(100), NOW)
        .await
        .expect("append");
    let again = history
        .append(&stream, Some(&id), "1", retention(100), later(1))
        .await
        .expect("append");
    let next = history
        .append(&stream, Some(&other), "2", retention(100), later(2))
        .await
        .expect("append");

    assert!(first.new);
    assert!(!again.new);
    assert_eq!(again.position, first.position);
    assert_eq!(next.position.seq, 2);
    let epoch = first.position.epoch;
    assert_eq!(
        seqs(&read(&history, "room:1", &at(0, &epoch), 100).await),
        [1, 2]
    );
}

/// A request redelivered after its message was trimmed away and had expired (SQS redelivers
/// a failed record for up to `maxReceiveCount` times the visibility timeout, longer than a
/// short history TTL) is still not appended again, while its mark lives; after that it is.
pub async fn a_request_redelivered_after_its_message_is_gone_is_not_appended_again(
    _: Store,
    history: History,
) {
    let stream = topic("room:1");
    let id = RequestId::parse("m-late").expect("valid");
    let first = history
        .append(&stream, Some(&id), "late", retention(2), NOW)
        .await
        .expect("append");
    for n in 0..3 {
        history
            .append(&stream, None, &n.to_string(), retention(2), later(1))
            .await
            .expect("append");
    }

    // Trimmed by size: the message is gone, the mark is not.
    let trimmed = history
        .append(&stream, Some(&id), "late", retention(2), later(2))
        .await
        .expect("append");
    // Past the message TTL (60 s) and the stream's life, within the marks' (600 s).
    let expired = history
        .append(&stream, Some(&id), "late", retention(2), later(300))
        .await
        .expect("append");
    // Past the marks' life: a new append.
    let forgotten = history
        .append(&stream, Some(&id), "late", retention(2), later(700))
        .await
        .expect("append");

    assert_eq!((trimmed.new, &trimmed.position), (false, &first.position));
    assert_eq!((expired.new, &expired.position), (false, &first.position));
    assert!(forgotten.new);
    assert_ne!(forgotten.position, first.position);
}

/// A stream keeps its latest `size` messages; a position before them is a gap.
pub async fn a_stream_keeps_its_latest_messages_and_a_position_before_them_is_a_gap(
    _: Store,
    history: History,
) {
    let mut last = None;
    for n in 1..=5 {
        last = Some(append(&history, "room:1", &n.to_string(), 3).await);
    }
    let epoch = last.expect("appended").epoch;

    assert_eq!(
        seqs(&read(&history, "room:1", &at(2, &epoch), 3).await),
        [3, 4, 5]
    );
    assert_eq!(
        read(&history, "room:1", &at(1, &epoch), 3).await,
        HistoryRead::Gap
    );
    assert_eq!(
        read(&history, "room:1", &at(0, &epoch), 3).await,
        HistoryRead::Gap
    );
}

/// Messages older than the TTL are gone, even before the store's TTL deletes them.
pub async fn a_message_older_than_the_ttl_is_a_gap(_: Store, history: History) {
    let stream = topic("room:1");
    let first = history
        .append(&stream, None, "1", retention(100), NOW)
        .await
        .expect("append")
        .position;
    history
        .append(&stream, None, "2", retention(100), later(30))
        .await
        .expect("append");

    let after_expiry = |after: Position| {
        let history = Arc::clone(&history);
        let stream = stream.clone();
        async move {
            history
                .read_after(&stream, &after, retention(100), later(61))
                .await
                .expect("read")
        }
    };
    assert_eq!(after_expiry(at(0, &first.epoch)).await, HistoryRead::Gap);
    assert_eq!(seqs(&after_expiry(first.clone()).await), [2]);
}

/// A stream idle past its TTL starts again at 1 in a new epoch, and old positions are gaps.
pub async fn a_stream_idle_past_its_ttl_starts_a_new_epoch(_: Store, history: History) {
    let stream = topic("room:1");
    let old = history
        .append(&stream, None, "1", retention(100), NOW)
        .await
        .expect("append")
        .position;

    let new = history
        .append(&stream, None, "2", retention(100), later(61))
        .await
        .expect("append")
        .position;

    assert_eq!(new.seq, 1);
    assert_ne!(new.epoch, old.epoch);
    let read_old = history
        .read_after(&stream, &old, retention(100), later(62))
        .await
        .expect("read");
    assert_eq!(read_old, HistoryRead::Gap);
}

/// A position of another epoch, or past the latest, is a gap; an unknown stream too.
pub async fn a_position_of_another_epoch_or_past_the_latest_is_a_gap(_: Store, history: History) {
    let position = append(&history, "room:1", "1", 100).await;
    let other = Epoch::parse("not-this-one").expect("epoch");

    assert_eq!(
        read(&history, "room:1", &at(0, &other), 100).await,
        HistoryRead::Gap
    );
    assert_eq!(
        read(&history, "room:1", &at(2, &position.epoch), 100).await,
        HistoryRead::Gap
    );
    assert_eq!(
        read(&history, "room:9", &at(0, &other), 100).await,
        HistoryRead::Gap
    );
}

/// Every position of a message of several streams is read back with it.
pub async fn the_positions_of_a_message_of_several_streams_are_read_back(
    _: Store,
    history: History,
) {
    let a = append(&history, "room:a", "1", 100).await;
    let b = append(&history, "room:b", "1", 100).await;
    let both = vec![(topic("room:a"), a.clone()), (topic("room:b"), b.clone())];
    for (stream, position) in &both {
        history
            .record_positions(stream, position, &both)
            .await
            .expect("record");
    }

    let HistoryRead::Messages(messages) = read(&history, "room:b", &at(0, &b.epoch), 100).await
    else {
        panic!("a gap");
    };

    assert_eq!(
        messages,
        [Recorded {
            position: b,
            data: "1".into(),
            positions: both,
        }]
    );
}

/// History items are not connections: no audience sees them.
pub async fn history_never_appears_in_an_audience(store: Store, history: History) {
    append(&history, "room:1", "1", 100).await;

    assert!(
        read_all(&store, Source::All(Segment::WHOLE), 100)
            .await
            .is_empty()
    );
    assert!(
        read_all(&store, Source::Topic(topic("room:1")), 100)
            .await
            .is_empty()
    );
}
