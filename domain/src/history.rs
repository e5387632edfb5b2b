//! Stream history, the rules (issue 17, first part: the pusher and the stores do not use it
//! yet). A *stream* is a topic, a user's own channel `user:<id>` included; history is kept
//! for the streams of the namespaces a [`HistoryPolicy`] names. Each message appended to a
//! stream gets its next sequence number, and a stream's [`Epoch`] changes whenever its
//! history is lost, so that a [`Position`] from before is known to be unrecoverable.
//!
//! On the wire, a connection receives a request that names history streams as an
//! [`envelope`]: `{"data": ..., "positions": {"room:42": {"seq": 17, "epoch": "..."}}}`; a
//! client resumes with `"since"` in its subscribe message, read by [`Since::parse`].
//!
//! A broadcast names no stream: it is sent as today, without positions (a broadcast to every
//! connection has no topic a client could resume).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::ids::{ExternalId, USER_CHANNEL_NAMESPACE};
use crate::notification::NotificationRequest;

/// How long a stream's messages are kept by default: 15 minutes.
pub const DEFAULT_HISTORY_TTL: Duration = Duration::from_secs(900);
/// How many messages a stream keeps by default.
pub const DEFAULT_HISTORY_SIZE: u32 = 100;
/// The longest epoch, in characters.
pub const MAX_EPOCH_CHARS: usize = 64;

/// How long a request's append is remembered by default, so that a redelivery does not
/// append it again: as long as the pusher's ledger remembers a completed request (24 hours),
/// well past SQS's last redelivery of a failed message (`maxReceiveCount` times the
/// visibility timeout: 30 minutes with the template's 5 and 360 s).
pub const DEFAULT_MARK_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// How much of a stream's history is kept: messages younger than `ttl`, and at most `size`
/// of them (the latest); and how long a request's append is remembered (`marks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// How long a message is kept after it was appended.
    pub ttl: Duration,
    /// How many messages a stream keeps.
    pub size: u32,
    /// How long the store remembers where a request (by its ID) was appended, so that its
    /// redelivery is not appended again; the longer of this and `ttl` applies. Unlike the
    /// messages, marks are not trimmed by `size`.
    pub marks: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            ttl: DEFAULT_HISTORY_TTL,
            size: DEFAULT_HISTORY_SIZE,
            marks: DEFAULT_MARK_TTL,
        }
    }
}

/// Which streams keep history, for how long, and how much of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPolicy {
    namespaces: BTreeSet<String>,
    ttl: Duration,
    size: u32,
}

/// A [`HistoryPolicy`] that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryPolicyError {
    /// A namespace holds a `:` or is empty.
    #[error("history namespace {0:?} must be non-empty and without `:`")]
    Namespace(String),
    /// A size of 0.
    #[error("a stream must keep at least 1 message")]
    NoSize,
    /// A TTL under a second.
    #[error("history must be kept at least 1 s")]
    NoTtl,
}

impl Default for HistoryPolicy {
    /// No history.
    fn default() -> Self {
        Self {
            namespaces: BTreeSet::new(),
            ttl: DEFAULT_HISTORY_TTL,
            size: DEFAULT_HISTORY_SIZE,
        }
    }
}

impl HistoryPolicy {
    /// History for the streams of `namespaces` (`user` for users' own channels), kept `ttl`
    /// and at most `size` messages per stream.
    pub fn new<I, S>(namespaces: I, ttl: Duration, size: u32) -> Result<Self, HistoryPolicyError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let namespaces: BTreeSet<String> = namespaces.into_iter().map(Into::into).collect();
        if let Some(bad) = namespaces
            .iter()
            .find(|namespace| namespace.is_empty() || namespace.contains(':'))
        {
            return Err(HistoryPolicyError::Namespace(bad.clone()));
        }
        if size == 0 {
            return Err(HistoryPolicyError::NoSize);
        }
        if ttl < Duration::from_secs(1) {
            return Err(HistoryPolicyError::NoTtl);
        }
        Ok(Self {
            namespaces,
            ttl,
            size,
        })
    }

    /// Whether any stream keeps history.
    pub fn is_on(&self) -> bool {
        !self.namespaces.is_empty()
    }

    /// How long messages are kept.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// How many messages a stream keeps.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// How long and how much each stream keeps.
    pub fn retention(&self) -> Retention {
        Retention {
            ttl: self.ttl,
            size: self.size,
            marks: DEFAULT_MARK_TTL,
        }
    }

    /// The namespaces that keep history, in order.
    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.namespaces.iter().map(String::as_str)
    }

    /// Whether `topic` is a stream that keeps history.
    pub fn keeps(&self, topic: &ExternalId) -> bool {
        topic
            .namespace()
            .is_some_and(|namespace| self.namespaces.contains(namespace))
    }

    /// The history streams `request` names, each once, in the order named: its topics of a
    /// kept namespace, and its users' own channels when `user` is one. None for a broadcast.
    pub fn streams_of(&self, request: &NotificationRequest) -> Vec<ExternalId> {
        let mut streams: Vec<ExternalId> = Vec::new();
        let mut push = |stream: ExternalId| {
            if !streams.contains(&stream) {
                streams.push(stream);
            }
        };
        for topic in request.topics() {
            if self.keeps(topic) {
                push(topic.clone());
            }
        }
        if self.namespaces.contains(USER_CHANNEL_NAMESPACE) {
            for user in request.users() {
                push(ExternalId::user_channel(user));
            }
        }
        streams
    }
}

/// A stream's epoch: opaque, 1 to [`MAX_EPOCH_CHARS`] visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Epoch(String);

impl Epoch {
    /// An epoch, if `text` is one.
    pub fn parse(text: impl Into<String>) -> Option<Self> {
        let text = text.into();
        let valid = !text.is_empty()
            && text.chars().count() <= MAX_EPOCH_CHARS
            && text.chars().all(|c| c.is_ascii_graphic());
        valid.then_some(Self(text))
    }

    /// The epoch as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a message sits in its stream: its sequence number in an epoch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Position {
    /// 1, 2, 3, ... with no gap and no repeat within an epoch.
    pub seq: u64,
    /// The stream's epoch when the message was appended.
    pub epoch: Epoch,
}

/// The text a connection receives for a message of history streams: `data` (compact JSON
/// text, as [`NotificationRequest::payload`]) with each stream's position.
pub fn envelope(data: &str, positions: &[(ExternalId, Position)]) -> String {
    let mut text = String::with_capacity(data.len() + 32 + positions.len() * 48);
    text.push_str("{\"data\":");
    text.push_str(data);
    text.push_str(",\"positions\":");
    write_positions(&mut text, positions);
    text.push('}');
    text
}

/// `positions` as a JSON object: `{"room:42": {"seq": 17, "epoch": "..."}}`.
pub fn positions_json(positions: &[(ExternalId, Position)]) -> String {
    let mut text = String::with_capacity(2 + positions.len() * 48);
    write_positions(&mut text, positions);
    text
}

/// Reads what [`positions_json`] wrote; `None` for anything else.
pub fn parse_positions_json(text: &str) -> Option<Vec<(ExternalId, Position)>> {
    let Value::Object(entries) = serde_json::from_str::<Value>(text).ok()? else {
        return None;
    };
    entries
        .into_iter()
        .map(|(stream, position)| {
            Some((
                ExternalId::parse(stream).ok()?,
                Position {
                    seq: position.get("seq")?.as_u64()?,
                    epoch: Epoch::parse(position.get("epoch")?.as_str()?)?,
                },
            ))
        })
        .collect()
}

fn write_positions(text: &mut String, positions: &[(ExternalId, Position)]) {
    text.push('{');
    for (index, (stream, position)) in positions.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        // IDs and epochs are strings; serde_json escapes them.
        text.push_str(&Value::from(stream.as_str()).to_string());
        text.push_str(":{\"seq\":");
        text.push_str(&position.seq.to_string());
        text.push_str(",\"epoch\":");
        text.push_str(&Value::from(position.epoch.as_str()).to_string());
        text.push('}');
    }
    text.push('}');
}

/// The positions a subscribe message resumes from: `"since": {"room:42": {"seq": 17,
/// "epoch": "..."}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Since(BTreeMap<ExternalId, Position>);

/// Why a `since` was refused: the field at fault, and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}` {rule}")]
pub struct SinceError {
    /// The field, such as `since["room:42"].seq`.
    pub field: String,
    /// What it must be.
    pub rule: &'static str,
}

impl Since {
    /// Reads `since` from a subscribe message that names `topics`: an object (or `null`)
    /// whose keys are among `topics`, each `{"seq": integer >= 0, "epoch": string}`.
    pub fn parse(value: &Value, topics: &[ExternalId]) -> Result<Self, SinceError> {
        let entries = match value {
            Value::Null => return Ok(Self::default()),
            Value::Object(entries) => entries,
            _ => {
                return Err(SinceError {
                    field: "since".into(),
                    rule: "must be an object of positions by stream, or null",
                });
            }
        };
        let mut positions = BTreeMap::new();
        for (name, entry) in entries {
            let field = format!("since[{}]", Value::from(name.as_str()));
            let bad = |suffix: &str, rule| SinceError {
                field: format!("{field}{suffix}"),
                rule,
            };
            let Some(stream) = topics.iter().find(|topic| topic.as_str() == name) else {
                return Err(bad("", "names a stream this message does not subscribe to"));
            };
            let Value::Object(fields) = entry else {
                return Err(bad("", "must be an object {\"seq\": ..., \"epoch\": ...}"));
            };
            if let Some(unknown) = fields
                .keys()
                .find(|key| !["seq", "epoch"].contains(&key.as_str()))
            {
                return Err(SinceError {
                    field: format!("{field}.{unknown}"),
                    rule: "is not a position field (seq, epoch)",
                });
            }
            let seq = fields
                .get("seq")
                .and_then(Value::as_u64)
                .ok_or_else(|| bad(".seq", "must be an integer of at least 0"))?;
            let epoch = fields
                .get("epoch")
                .and_then(Value::as_str)
                .and_then(Epoch::parse)
                .ok_or_else(|| bad(".epoch", "must be 1 to 64 visible ASCII characters"))?;
            positions.insert(stream.clone(), Position { seq, epoch });
        }
        Ok(Self(positions))
    }

    /// Where `stream` resumes, if the message says.
    pub fn of(&self, stream: &ExternalId) -> Option<&Position> {
        self.0.get(stream)
    }

    /// Each stream's position, in stream order.
    pub fn iter(&self) -> impl Iterator<Item = (&ExternalId, &Position)> {
        self.0.iter()
    }

    /// Whether no position was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn topic(text: &str) -> ExternalId {
        ExternalId::parse(text).expect("valid")
    }

    fn policy(namespaces: &[&str]) -> HistoryPolicy {
        HistoryPolicy::new(namespaces.iter().copied(), DEFAULT_HISTORY_TTL, 100).expect("valid")
    }

    #[test]
    fn the_streams_of_a_request_are_its_kept_topics_and_users_own_channels() {
        let request = NotificationRequest::parse(
            r#"{"users":["ana","bob"],"topics":["room:42","ticker:AAPL","room:42x"],"data":1}"#,
        )
        .expect("valid");

        let rooms_and_users = policy(&["room", "user"]).streams_of(&request);
        let rooms = policy(&["room"]).streams_of(&request);

        assert_eq!(
            rooms_and_users,
            ["room:42", "room:42x", "user:ana", "user:bob"].map(topic)
        );
        assert_eq!(rooms, ["room:42", "room:42x"].map(topic));
        assert!(HistoryPolicy::default().streams_of(&request).is_empty());
        assert!(!HistoryPolicy::default().is_on());
        let broadcast = NotificationRequest::parse(r#"{"data":1}"#).expect("valid");
        assert!(policy(&["room", "user"]).streams_of(&broadcast).is_empty());
    }

    #[test]
    fn a_policy_refuses_what_cannot_work() {
        assert_eq!(
            HistoryPolicy::new(["room:x"], DEFAULT_HISTORY_TTL, 1),
            Err(HistoryPolicyError::Namespace("room:x".into()))
        );
        assert_eq!(
            HistoryPolicy::new(["room"], DEFAULT_HISTORY_TTL, 0),
            Err(HistoryPolicyError::NoSize)
        );
        assert_eq!(
            HistoryPolicy::new(["room"], Duration::ZERO, 1),
            Err(HistoryPolicyError::NoTtl)
        );
    }

    #[test]
    fn the_envelope_carries_the_data_as_given_and_each_position() {
        let positions = vec![
            (
                topic("room:42"),
                Position {
                    seq: 17,
                    epoch: Epoch::parse("e1").expect("epoch"),
                },
            ),
            (
                topic("user:a\"b"),
                Position {
                    seq: 1,
                    epoch: Epoch::parse("e2").expect("epoch"),
                },
            ),
        ];

        let text = envelope(r#"{"text":"hi","n":1.50}"#, &positions);

        assert!(
            text.starts_with(r#"{"data":{"text":"hi","n":1.50},"#),
            "{text}"
        );
        let value: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(
            value["positions"],
            json!({"room:42": {"seq": 17, "epoch": "e1"}, "user:a\"b": {"seq": 1, "epoch": "e2"}})
        );
        assert_eq!(
            parse_positions_json(&positions_json(&positions)),
            Some(positions)
        );
        assert_eq!(parse_positions_json("[1]"), None);
    }

    #[test]
    fn since_is_read_for_the_streams_the_message_names() {
        let topics = [topic("room:42"), topic("room:7")];

        let since =
            Since::parse(&json!({"room:42": {"seq": 17, "epoch": "e1"}}), &topics).expect("valid");

        assert_eq!(since.of(&topics[0]).map(|p| p.seq), Some(17));
        assert_eq!(since.of(&topics[1]), None);
        assert!(
            Since::parse(&Value::Null, &topics)
                .expect("null")
                .is_empty()
        );
    }

    #[test]
    fn a_bad_since_names_the_field_and_the_rule() {
        let topics = [topic("room:42")];
        let long = "e".repeat(65);
        for (since, field) in [
            (json!([1]), "since"),
            (
                json!({"room:9": {"seq": 1, "epoch": "e"}}),
                "since[\"room:9\"]",
            ),
            (json!({"room:42": 17}), "since[\"room:42\"]"),
            (
                json!({"room:42": {"seq": -1, "epoch": "e"}}),
                "since[\"room:42\"].seq",
            ),
            (
                json!({"room:42": {"seq": 1.5, "epoch": "e"}}),
                "since[\"room:42\"].seq",
            ),
            (json!({"room:42": {"epoch": "e"}}), "since[\"room:42\"].seq"),
            (
                json!({"room:42": {"seq": 1, "epoch": long}}),
                "since[\"room:42\"].epoch",
            ),
            (
                json!({"room:42": {"seq": 1, "epoch": ""}}),
                "since[\"room:42\"].epoch",
            ),
            (
                json!({"room:42": {"seq": 1, "epoch": "e", "x": 1}}),
                "since[\"room:42\"].x",
            ),
        ] {
            let error = Since::parse(&since, &topics).expect_err("invalid");
            assert_eq!(error.field, field, "{since}: {error}");
        }
    }
}
