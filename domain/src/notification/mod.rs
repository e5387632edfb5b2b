//! Notification requests: the pusher's input.
//!
//! The format is a superset of the Python pusher's, so its producers keep working:
//!
//! ```json
//! {"users": ["u-1"], "topics": ["room:42"], "connections": ["L0SM9cOFvHcCIhw="],
//!  "exclude_users": ["u-2"], "exclude_connections": ["Xk2Pz1OFvHcAbc="],
//!  "data": {"type": "notification", "text": "hi"}}
//! ```
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `users` | array of user IDs, or `null` | every connection of these users |
//! | `topics` | array of external IDs, or `null` | every connection subscribed to one of them |
//! | `connections` | array of connection IDs, or `null` | these connections |
//! | `broadcast` | `true`, `false` or `null` | `true`: every connection (with no `users`, `topics` or `connections`) |
//! | `exclude_users` | array of user IDs, or `null` | never these users' connections; no size cap |
//! | `exclude_connections` | array of connection IDs, or `null` | never these connections; no size cap |
//! | `data` | any JSON value but `null`; required | sent to each connection as its compact JSON text, at most 128 KB |
//! | `id` | request ID, or `null` | the request's identity for idempotent redelivery (the SQS or SNS message ID when absent) |
//! | `segment` | `{"index": i, "total": n}`, or `null` | a broadcast only: just segment `i` of `n` of the store (a scattered broadcast) |
//! | `cursor` | string, or `null` | where in its one source the push resumes (set by the pusher's continuations) |
//! | `generation` | integer 0 to 100, or `null` | how many times failed connections were re-enqueued (set by the pusher) |
//!
//! The audience is the union of `users`, `topics` and `connections`. A list that is given
//! targets exactly what it names, so an empty list, or `null`, targets nobody: a producer
//! that computes its recipients at run time and finds none sends to no one, not to everyone.
//! The request is a broadcast when it says `"broadcast": true`, or when `users`, `topics`
//! and `connections` are all absent (and `broadcast` is not `false`). The Python pusher read
//! empty lists as a broadcast; [`NotificationRequest::with_empty_lists_meaning_everyone`]
//! gives that reading back, for a pusher set up to be compatible with its producers.
//! Exclusions win over inclusion. Duplicate IDs in a list are dropped (each connection gets
//! the request at most once anyway). `segment` is refused unless the request is a broadcast;
//! `cursor` is refused unless the request reads exactly one source (one user, one topic, or
//! one broadcast segment).
//!
//! Unknown fields are errors, so that a typo such as `"user"` can never turn a multicast into
//! a broadcast; so are duplicate fields, wrong types, invalid IDs and oversized payloads. Every
//! error names the field.

#[cfg(test)]
mod audience_tests;
mod error;
mod fields;
mod json;
mod narrow;
#[cfg(test)]
mod tests;

use serde::Serialize;
use serde::de;
use serde::ser::{SerializeMap, Serializer};
use serde_json::value::RawValue;

use crate::history::Position;
use crate::ids::{ConnectionId, ExternalId, RequestId, UserId};
use crate::segment::Segment;

pub use error::RequestError;
pub use fields::FIELDS;
pub use json::MAX_DATA_DEPTH;
pub use narrow::Narrowed;

use fields::{RawFields, SegmentField};

/// A validated notification request. Build it with [`NotificationRequest::parse`].
#[derive(Debug, Clone)]
pub struct NotificationRequest {
    users: Vec<UserId>,
    topics: Vec<ExternalId>,
    connections: Vec<ConnectionId>,
    exclude_users: Vec<UserId>,
    exclude_connections: Vec<ConnectionId>,
    /// Every connection is targeted; `users`, `topics` and `connections` are then empty.
    broadcast: bool,
    /// The request says `"broadcast": false`.
    refuses_broadcast: bool,
    data: Box<RawValue>,
    id: Option<RequestId>,
    segment: Option<Segment>,
    cursor: Option<String>,
    generation: u32,
    /// Where the request sits in its history streams, once appended (continuations carry it).
    positions: Option<Vec<(ExternalId, Position)>>,
}

impl PartialEq for NotificationRequest {
    fn eq(&self, other: &Self) -> bool {
        self.users == other.users
            && self.topics == other.topics
            && self.connections == other.connections
            && self.exclude_users == other.exclude_users
            && self.exclude_connections == other.exclude_connections
            && self.broadcast == other.broadcast
            && self.refuses_broadcast == other.refuses_broadcast
            && self.data.get() == other.data.get()
            && self.id == other.id
            && self.segment == other.segment
            && self.cursor == other.cursor
            && self.generation == other.generation
            && self.positions == other.positions
    }
}
impl NotificationRequest {
    /// Parses and validates a request from its JSON text.
    pub fn parse(json: &str) -> Result<Self, RequestError> {
        if !json.trim_start().starts_with('{') {
            // Still report broken JSON as a syntax error, not as a wrong shape.
            serde_json::from_str::<de::IgnoredAny>(json).map_err(RequestError::Syntax)?;
            return Err(RequestError::NotAnObject);
        }
        let fields: RawFields = serde_json::from_str(json).map_err(RequestError::Syntax)?;
        Self::from_fields(fields.0)
    }

    /// Parses and validates a request from JSON bytes, which must be UTF-8.
    pub fn parse_slice(json: &[u8]) -> Result<Self, RequestError> {
        match std::str::from_utf8(json) {
            Ok(text) => Self::parse(text),
            // The JSON parser describes a bad byte outside strings; inside them (which it
            // skips unchecked) the UTF-8 check does.
            Err(utf8) => Err(RequestError::Syntax(
                serde_json::from_slice::<de::IgnoredAny>(json)
                    .err()
                    .unwrap_or_else(|| {
                        de::Error::custom(format!(
                            "request is not UTF-8: invalid byte at offset {}",
                            utf8.valid_up_to()
                        ))
                    }),
            )),
        }
    }

    /// This request with `id`.
    #[must_use]
    pub fn with_id(mut self, id: Option<RequestId>) -> Self {
        self.id = id;
        self
    }

    /// This request at `generation`.
    #[must_use]
    pub fn with_generation(mut self, generation: u32) -> Self {
        self.generation = generation;
        self
    }

    /// This request with its positions in its history streams: the pusher appended it, and
    /// its continuations must carry the same envelope without appending again.
    #[must_use]
    pub fn with_positions(mut self, positions: Vec<(ExternalId, Position)>) -> Self {
        self.positions = Some(positions);
        self
    }

    /// Where the request sits in its history streams, if it was appended before (a
    /// continuation of an appended request).
    pub fn positions(&self) -> Option<&[(ExternalId, Position)]> {
        self.positions.as_deref()
    }

    /// The request's own ID (`id`), if it has one.
    pub fn id(&self) -> Option<&RequestId> {
        self.id.as_ref()
    }

    /// The broadcast segment this request is limited to, if any.
    pub fn segment(&self) -> Option<Segment> {
        self.segment
    }

    /// Where in its one source the push resumes, if it is a continuation.
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// How many times failed connections were re-enqueued to reach this request (0 for a
    /// producer's request).
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Whether one connection may be reached through more than one of the request's
    /// sources (several topics, or users, topics and connections together), so that
    /// de-duplication must remember what was admitted.
    pub fn sources_overlap(&self) -> bool {
        let kinds = [
            !self.users.is_empty(),
            !self.topics.is_empty(),
            !self.connections.is_empty(),
        ]
        .into_iter()
        .filter(|given| *given)
        .count();
        kinds > 1 || self.topics.len() > 1
    }

    /// The users whose connections are targeted.
    pub fn users(&self) -> &[UserId] {
        &self.users
    }

    /// The external IDs whose subscribers are targeted.
    pub fn topics(&self) -> &[ExternalId] {
        &self.topics
    }

    /// The connections targeted by ID.
    pub fn connections(&self) -> &[ConnectionId] {
        &self.connections
    }

    /// Users who never receive this request.
    pub fn exclude_users(&self) -> &[UserId] {
        &self.exclude_users
    }

    /// Connections that never receive this request.
    pub fn exclude_connections(&self) -> &[ConnectionId] {
        &self.exclude_connections
    }

    /// Whether the request goes to every connection (`"broadcast": true`, or no `users`,
    /// `topics` or `connections` given), or to every connection of one segment when it has
    /// a [`segment`](Self::segment).
    pub fn is_broadcast(&self) -> bool {
        self.broadcast
    }

    /// Whether the request targets nobody: it is no broadcast, and the lists it gives are
    /// all empty (`{"users": []}`, `{"users": null}`).
    pub fn names_nobody(&self) -> bool {
        !self.broadcast
            && self.users.is_empty()
            && self.topics.is_empty()
            && self.connections.is_empty()
    }

    /// The Python pusher's reading of this request: one that [names nobody](Self::names_nobody)
    /// only because its lists are empty is a broadcast (exclusions kept). Any other request
    /// is returned as it is, and so is one that says `"broadcast": false`.
    #[must_use]
    pub fn with_empty_lists_meaning_everyone(mut self) -> Self {
        if self.names_nobody() && !self.refuses_broadcast {
            self.broadcast = true;
        }
        self
    }

    /// The payload each connection receives: `data` as compact JSON text.
    pub fn payload(&self) -> &str {
        self.data.get()
    }

    /// The request as JSON text in the documented format (empty lists are left out, but for
    /// one `"users": []` in a request that names nobody).
    pub fn to_json(&self) -> String {
        // Serializing IDs and a raw value cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Serialize for NotificationRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (name, list) in [
            ("users", as_strs(&self.users)),
            ("topics", as_strs(&self.topics)),
            ("connections", as_strs(&self.connections)),
            ("exclude_users", as_strs(&self.exclude_users)),
            ("exclude_connections", as_strs(&self.exclude_connections)),
        ] {
            if !list.is_empty() {
                map.serialize_entry(name, &list)?;
            }
        }
        if self.refuses_broadcast {
            map.serialize_entry("broadcast", &false)?;
        } else if self.names_nobody() {
            // An empty list, so that the text too names nobody.
            map.serialize_entry("users", &[] as &[&str])?;
        }
        map.serialize_entry("data", &self.data)?;
        if let Some(id) = &self.id {
            map.serialize_entry("id", id.as_str())?;
        }
        if let Some(segment) = self.segment {
            map.serialize_entry(
                "segment",
                &SegmentField {
                    index: segment.index(),
                    total: segment.total(),
                },
            )?;
        }
        if let Some(cursor) = &self.cursor {
            map.serialize_entry("cursor", cursor)?;
        }
        if self.generation > 0 {
            map.serialize_entry("generation", &self.generation)?;
        }
        if let Some(positions) = &self.positions {
            let positions: std::collections::BTreeMap<&str, PositionEntry<'_>> = positions
                .iter()
                .map(|(stream, position)| {
                    (
                        stream.as_str(),
                        PositionEntry {
                            seq: position.seq,
                            epoch: position.epoch.as_str(),
                        },
                    )
                })
                .collect();
            map.serialize_entry("positions", &positions)?;
        }
        map.end()
    }
}
/// One position as `positions` writes it.
#[derive(Serialize)]
struct PositionEntry<'a> {
    seq: u64,
    epoch: &'a str,
}

fn as_strs<T: AsRef<str>>(ids: &[T]) -> Vec<&str> {
    ids.iter().map(AsRef::as_ref).collect()
}
