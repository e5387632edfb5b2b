//! The history store port: each history stream's recent messages, with gap-free sequence
//! numbers and an epoch (see [`wspush_domain::history`]).
//!
//! The pusher appends a request to each of its history streams once, before it reads the
//! audience; the subscribe function reads a stream after a client's last position to hand
//! it what it missed.

use async_trait::async_trait;
use wspush_domain::{ExternalId, Position, RequestId, Retention, Timestamp};

use crate::store::StoreError;

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Where the message sits in the stream.
    pub position: Position,
    /// `false` when the request had been appended to the stream before (a redelivery): the
    /// position is that earlier one, and nothing was written.
    pub new: bool,
}

/// One message kept in a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Its position in the stream read.
    pub position: Position,
    /// The request's `data`, as compact JSON text.
    pub data: String,
    /// Every position of the message when it went to several history streams (recorded by
    /// [`HistoryStore::record_positions`]); empty otherwise.
    pub positions: Vec<(ExternalId, Position)>,
}

impl Recorded {
    /// The positions a connection receives the message with: all of them when known, else
    /// the stream's own.
    pub fn positions_for(&self, stream: &ExternalId) -> Vec<(ExternalId, Position)> {
        if self.positions.is_empty() {
            vec![(stream.clone(), self.position.clone())]
        } else {
            self.positions.clone()
        }
    }
}

/// What a stream holds after a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryRead {
    /// Every message after the position up to the stream's latest, in order (empty when
    /// nothing was missed).
    Messages(Vec<Recorded>),
    /// The history no longer reaches back to the position: the stream has another epoch
    /// (its history was lost), or a message after the position was trimmed or expired. The
    /// client must reload its state.
    Gap,
}

/// Keeps the recent messages of history streams. (No mock: its contract is tested on both
/// real stores by the store contract suite.)
#[async_trait]
pub trait HistoryStore: Send + Sync {
    /// Appends `data` to `stream`, keeping what `retention` says, and returns its position.
    ///
    /// MUST give the stream's next sequence number, atomically: concurrent appends to one
    /// stream get 1, 2, 3, ... with no gap and no repeat. MUST start a new epoch, at 1,
    /// when the stream has no head at `now` (never appended, expired, deleted), so that no
    /// position of the old epoch reads as one of the new. When `request` is given and was
    /// appended to `stream` before (and is still kept), MUST return that position with
    /// [`Appended::new`] false and append nothing.
    async fn append(
        &self,
        stream: &ExternalId,
        request: Option<&RequestId>,
        data: &str,
        retention: Retention,
        now: Timestamp,
    ) -> Result<Appended, StoreError>;

    /// Records on the message at `position` of `stream` every position it got (a request
    /// appended to several streams), so that a resume hands it with all of them and a client
    /// recognizes it whichever stream it saw it on. MUST be idempotent.
    async fn record_positions(
        &self,
        stream: &ExternalId,
        position: &Position,
        positions: &[(ExternalId, Position)],
    ) -> Result<(), StoreError>;

    /// The messages of `stream` after `after`, in order, as `retention` keeps them.
    ///
    /// MUST return [`HistoryRead::Gap`] when the stream's epoch at `now` is not
    /// `after.epoch`, when `after.seq` is past the stream's latest, or when any message
    /// between `after` and the latest is no longer kept (beyond `retention.size` back, or
    /// older than `retention.ttl` at `now`), and never a partial list.
    async fn read_after(
        &self,
        stream: &ExternalId,
        after: &Position,
        retention: Retention,
        now: Timestamp,
    ) -> Result<HistoryRead, StoreError>;
}
