//! The memory store's stream history: a map of streams, each a deque of its latest
//! messages, under one lock that is never held across an `.await`.

use std::collections::{HashMap, VecDeque};
use std::sync::PoisonError;

use async_trait::async_trait;
use wspush_domain::{Epoch, ExternalId, Position, RequestId, Retention, Timestamp};
use wspush_ports::{Appended, HistoryRead, HistoryStore, Recorded, StoreError};

use super::MemoryStore;

/// Every stream that was appended to, and the requests appended.
#[derive(Debug, Default)]
pub(super) struct Streams {
    by_name: HashMap<ExternalId, Stream>,
    /// Where each request with an ID was appended, until when that is remembered
    /// ([`Retention::marks`]): kept apart from the messages, which trimming and their TTL
    /// take away sooner than a queue stops redelivering the request.
    marks: HashMap<(ExternalId, RequestId), (Position, Timestamp)>,
}

impl Streams {
    /// Forgets the streams whose every message has expired at `now` (their next append
    /// would start a new epoch anyway), and the marks that expired.
    pub(super) fn sweep(&mut self, now: Timestamp) {
        self.by_name.retain(|_, stream| stream.until > now);
        self.marks.retain(|_, (_, until)| *until > now);
    }
}

#[derive(Debug)]
struct Stream {
    epoch: Epoch,
    /// The latest sequence number given.
    head: u64,
    /// Until when the stream lives: its last append's expiry. Past it, every message has
    /// expired and the next append starts a new epoch.
    until: Timestamp,
    /// The kept messages, oldest first, consecutive up to `head`.
    messages: VecDeque<Kept>,
}

#[derive(Debug)]
struct Kept {
    seq: u64,
    data: String,
    until: Timestamp,
    positions: Vec<(ExternalId, Position)>,
}

/// A fresh epoch: 12 random letters and digits.
pub(crate) fn new_epoch() -> Epoch {
    let text: String = std::iter::repeat_with(fastrand::alphanumeric)
        .take(12)
        .collect();
    Epoch::parse(text).unwrap_or_else(|| unreachable!("alphanumeric text is an epoch"))
}

impl Stream {
    fn position(&self, seq: u64) -> Position {
        Position {
            seq,
            epoch: self.epoch.clone(),
        }
    }
}

#[async_trait]
impl HistoryStore for MemoryStore {
    async fn append(
        &self,
        stream: &ExternalId,
        request: Option<&RequestId>,
        data: &str,
        retention: Retention,
        now: Timestamp,
    ) -> Result<Appended, StoreError> {
        let mut streams = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        let mark = request.map(|request| (stream.clone(), request.clone()));
        if let Some((position, _)) = mark
            .as_ref()
            .and_then(|mark| streams.marks.get(mark))
            .filter(|(_, until)| *until > now)
        {
            return Ok(Appended {
                position: position.clone(),
                new: false,
            });
        }
        let until = now.saturating_add(retention.ttl);
        let entry = streams
            .by_name
            .entry(stream.clone())
            .or_insert_with(|| Stream {
                epoch: new_epoch(),
                head: 0,
                until,
                messages: VecDeque::new(),
            });
        if entry.until <= now {
            *entry = Stream {
                epoch: new_epoch(),
                head: 0,
                until,
                messages: VecDeque::new(),
            };
        }
        entry.head += 1;
        entry.until = until;
        entry.messages.push_back(Kept {
            seq: entry.head,
            data: data.to_owned(),
            until,
            positions: Vec::new(),
        });
        while entry.messages.len() > retention.size as usize {
            entry.messages.pop_front();
        }
        let position = entry.position(entry.head);
        if let Some(mark) = mark {
            let remembered = now.saturating_add(retention.marks.max(retention.ttl));
            streams.marks.insert(mark, (position.clone(), remembered));
        }
        Ok(Appended {
            position,
            new: true,
        })
    }

    async fn record_positions(
        &self,
        stream: &ExternalId,
        position: &Position,
        positions: &[(ExternalId, Position)],
    ) -> Result<(), StoreError> {
        let mut streams = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = streams.by_name.get_mut(stream)
            && entry.epoch == position.epoch
            && let Some(kept) = entry
                .messages
                .iter_mut()
                .find(|kept| kept.seq == position.seq)
        {
            kept.positions = positions.to_vec();
        }
        Ok(())
    }

    async fn read_after(
        &self,
        stream: &ExternalId,
        after: &Position,
        retention: Retention,
        now: Timestamp,
    ) -> Result<HistoryRead, StoreError> {
        let streams = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = streams
            .by_name
            .get(stream)
            .filter(|entry| entry.until > now)
        else {
            return Ok(HistoryRead::Gap);
        };
        if entry.epoch != after.epoch || after.seq > entry.head {
            return Ok(HistoryRead::Gap);
        }
        let oldest_kept = entry.head.saturating_sub(u64::from(retention.size)) + 1;
        if after.seq + 1 < oldest_kept {
            return Ok(HistoryRead::Gap);
        }
        let mut messages = Vec::new();
        let mut next = after.seq + 1;
        for kept in entry.messages.iter().filter(|kept| kept.seq > after.seq) {
            if kept.seq != next || kept.until <= now {
                return Ok(HistoryRead::Gap);
            }
            messages.push(Recorded {
                position: entry.position(kept.seq),
                data: kept.data.clone(),
                positions: kept.positions.clone(),
            });
            next += 1;
        }
        if next != entry.head + 1 {
            return Ok(HistoryRead::Gap);
        }
        Ok(HistoryRead::Messages(messages))
    }
}
