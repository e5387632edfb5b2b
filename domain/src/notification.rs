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
//! | `exclude_users` | array of user IDs, or `null` | never these users' connections; no size cap |
//! | `exclude_connections` | array of connection IDs, or `null` | never these connections; no size cap |
//! | `data` | any JSON value but `null`; required | sent to each connection as its compact JSON text, at most 128 KB |
//! | `id` | request ID, or `null` | the request's identity for idempotent redelivery (the SQS or SNS message ID when absent) |
//! | `segment` | `{"index": i, "total": n}`, or `null` | a broadcast only: just segment `i` of `n` of the store (a scattered broadcast) |
//! | `cursor` | string, or `null` | where in its one source the push resumes (set by the pusher's continuations) |
//! | `generation` | integer 0 to 100, or `null` | how many times failed connections were re-enqueued (set by the pusher) |
//!
//! The audience is the union of `users`, `topics` and `connections`; when all three are absent
//! or empty the request is a broadcast. Exclusions win over inclusion. Duplicate IDs in a list
//! are dropped (each connection gets the request at most once anyway). `segment` is refused
//! unless the request is a broadcast; `cursor` is refused unless the request reads exactly
//! one source (one user, one topic, or one broadcast segment).
//!
//! Unknown fields are errors, so that a typo such as `"user"` can never turn a multicast into
//! a broadcast; so are duplicate fields, wrong types, invalid IDs and oversized payloads. Every
//! error names the field.

use std::collections::HashSet;
use std::fmt;
use std::hash::Hash;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::audience::{Segment, SegmentError};
use crate::ids::{ConnectionId, ExternalId, IdError, RequestId, UserId};
use crate::limits::{MAX_CURSOR_BYTES, MAX_GENERATION, MAX_PAYLOAD_BYTES};

/// How deeply `data` may nest arrays and objects (serde_json's own recursion limit, which
/// it does not apply to raw values).
pub const MAX_DATA_DEPTH: usize = 128;

/// The fields a notification request may have.
pub const FIELDS: [&str; 10] = [
    "users",
    "topics",
    "connections",
    "exclude_users",
    "exclude_connections",
    "data",
    "id",
    "segment",
    "cursor",
    "generation",
];

/// Why a notification request was rejected. Every variant names the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The text is not JSON.
    #[error("request is not valid JSON: {0}")]
    Syntax(#[source] serde_json::Error),
    /// The JSON is not an object.
    #[error("request must be a JSON object")]
    NotAnObject,
    /// A field that is not part of the format.
    #[error(
        "unknown field `{field}`; expected one of users, topics, connections, exclude_users, exclude_connections, data, id, segment, cursor, generation"
    )]
    UnknownField {
        /// The field's name as given.
        field: String,
    },
    /// A field given twice.
    #[error("field `{field}` is given more than once")]
    DuplicateField {
        /// The field's name.
        field: String,
    },
    /// `data` is absent.
    #[error("missing field `data`")]
    MissingData,
    /// `data` is `null`.
    #[error("field `data` must not be null")]
    NullData,
    /// A field of the wrong JSON type.
    #[error("field `{field}` must be {expected}: {source}")]
    WrongType {
        /// The field's name.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
        /// The parser's words.
        #[source]
        source: serde_json::Error,
    },
    /// An ID in a list broke its rules.
    #[error("field `{field}[{index}]`: {source}")]
    InvalidId {
        /// The list's name.
        field: &'static str,
        /// The position in the list.
        index: usize,
        /// The rule broken.
        #[source]
        source: IdError,
    },
    /// `data` nests arrays and objects deeper than [`MAX_DATA_DEPTH`].
    #[error("field `data` nests arrays and objects deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// `id` broke the request ID rules.
    #[error("field `id`: {0}")]
    InvalidRequestId(#[source] IdError),
    /// `segment` is out of range.
    #[error("field `segment`: {0}")]
    InvalidSegment(#[source] SegmentError),
    /// `segment` on a request with users, topics or connections.
    #[error(
        "field `segment` applies to a broadcast only; remove `users`, `topics` and `connections`, or the segment"
    )]
    SegmentNeedsBroadcast,
    /// `cursor` is empty, too long or holds control characters.
    #[error("field `cursor` must be 1 to {max} bytes without control characters, got {len} bytes")]
    InvalidCursor {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `cursor` on a request that reads more than one source.
    #[error(
        "field `cursor` needs exactly one source: one user, one topic, or a broadcast with a `segment`"
    )]
    CursorNeedsOneSource,
    /// `generation` is above [`MAX_GENERATION`].
    #[error("field `generation` must be at most {max}, got {value}")]
    GenerationTooHigh {
        /// The value given.
        value: u32,
        /// The limit.
        max: u32,
    },
    /// `data` is larger than API Gateway accepts.
    #[error("field `data` is {len} bytes as compact JSON; API Gateway accepts at most {max}")]
    PayloadTooLarge {
        /// Its size as compact JSON.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl RequestError {
    /// The error in words that never quote the request: for logs, which must not hold
    /// message contents. (The parser's words for a wrong type can quote the value.)
    pub fn redacted(&self) -> String {
        match self {
            RequestError::WrongType {
                field, expected, ..
            } => format!("field `{field}` must be {expected}"),
            other => other.to_string(),
        }
    }

    /// The field at fault, if the error is about one field.
    pub fn field(&self) -> Option<&str> {
        match self {
            RequestError::Syntax(_) | RequestError::NotAnObject => None,
            RequestError::UnknownField { field } | RequestError::DuplicateField { field } => {
                Some(field)
            }
            RequestError::MissingData
            | RequestError::NullData
            | RequestError::TooDeep { .. }
            | RequestError::PayloadTooLarge { .. } => Some("data"),
            RequestError::WrongType { field, .. } | RequestError::InvalidId { field, .. } => {
                Some(field)
            }
            RequestError::InvalidRequestId(_) => Some("id"),
            RequestError::InvalidSegment(_) | RequestError::SegmentNeedsBroadcast => {
                Some("segment")
            }
            RequestError::InvalidCursor { .. } | RequestError::CursorNeedsOneSource => {
                Some("cursor")
            }
            RequestError::GenerationTooHigh { .. } => Some("generation"),
        }
    }
}

/// A validated notification request. Build it with [`NotificationRequest::parse`].
#[derive(Debug, Clone)]
pub struct NotificationRequest {
    users: Vec<UserId>,
    topics: Vec<ExternalId>,
    connections: Vec<ConnectionId>,
    exclude_users: Vec<UserId>,
    exclude_connections: Vec<ConnectionId>,
    data: Box<RawValue>,
    id: Option<RequestId>,
    segment: Option<Segment>,
    cursor: Option<String>,
    generation: u32,
}

impl PartialEq for NotificationRequest {
    fn eq(&self, other: &Self) -> bool {
        self.users == other.users
            && self.topics == other.topics
            && self.connections == other.connections
            && self.exclude_users == other.exclude_users
            && self.exclude_connections == other.exclude_connections
            && self.data.get() == other.data.get()
            && self.id == other.id
            && self.segment == other.segment
            && self.cursor == other.cursor
            && self.generation == other.generation
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

    fn from_fields(fields: Vec<(String, Box<RawValue>)>) -> Result<Self, RequestError> {
        let mut seen: Vec<&'static str> = Vec::with_capacity(fields.len());
        let mut request = Self {
            users: Vec::new(),
            topics: Vec::new(),
            connections: Vec::new(),
            exclude_users: Vec::new(),
            exclude_connections: Vec::new(),
            data: RawValue::from_string("null".to_owned()).map_err(RequestError::Syntax)?,
            id: None,
            segment: None,
            cursor: None,
            generation: 0,
        };
        for (name, value) in fields {
            let Some(&field) = FIELDS.iter().find(|known| **known == name) else {
                return Err(RequestError::UnknownField { field: name });
            };
            if seen.contains(&field) {
                return Err(RequestError::DuplicateField { field: name });
            }
            seen.push(field);
            match field {
                "users" => request.users = id_list(field, &value, UserId::parse)?,
                "topics" => request.topics = id_list(field, &value, ExternalId::parse)?,
                "connections" => request.connections = id_list(field, &value, ConnectionId::parse)?,
                "exclude_users" => request.exclude_users = id_list(field, &value, UserId::parse)?,
                "exclude_connections" => {
                    request.exclude_connections = id_list(field, &value, ConnectionId::parse)?
                }
                "id" => request.id = request_id(&value)?,
                "segment" => request.segment = segment(&value)?,
                "cursor" => request.cursor = cursor(&value)?,
                "generation" => request.generation = generation(&value)?,
                _ => request.data = compact_data(&value)?,
            }
        }
        if !seen.contains(&"data") {
            return Err(RequestError::MissingData);
        }
        request.check_resume_fields()?;
        Ok(request)
    }

    /// `segment` only on a broadcast, `cursor` only on a request with one source.
    fn check_resume_fields(&self) -> Result<(), RequestError> {
        let audience =
            !self.users.is_empty() || !self.topics.is_empty() || !self.connections.is_empty();
        if self.segment.is_some() && audience {
            return Err(RequestError::SegmentNeedsBroadcast);
        }
        let one_source = self.segment.is_some()
            || (self.connections.is_empty() && self.users.len() + self.topics.len() == 1);
        if self.cursor.is_some() && !one_source {
            return Err(RequestError::CursorNeedsOneSource);
        }
        Ok(())
    }

    /// A request with no audience fields, sent to `data`: the base of the narrowed requests
    /// that continuations are made of.
    fn with_data_of(&self) -> Self {
        Self {
            users: Vec::new(),
            topics: Vec::new(),
            connections: Vec::new(),
            exclude_users: Vec::new(),
            exclude_connections: Vec::new(),
            data: self.data.clone(),
            id: None,
            segment: None,
            cursor: None,
            generation: self.generation,
        }
    }

    /// The same `data` to exactly these connections, with no exclusions (they were applied
    /// when the connections were chosen): a continuation of connections that were read but
    /// not sent to, or that failed.
    pub fn narrowed_to_connections(&self, connections: Vec<ConnectionId>) -> Self {
        Self {
            connections,
            ..self.with_data_of()
        }
    }

    /// The same request narrowed to one source or to a set of sources that cannot overlap,
    /// exclusions kept: a continuation of sources that were not finished. `cursor` is where
    /// the one source resumes.
    pub fn narrowed_to(&self, audience: Narrowed) -> Self {
        let mut request = Self {
            exclude_users: self.exclude_users.clone(),
            exclude_connections: self.exclude_connections.clone(),
            ..self.with_data_of()
        };
        match audience {
            Narrowed::Users(users) => request.users = users,
            Narrowed::Topic(topic, cursor) => {
                request.topics = vec![topic];
                request.cursor = cursor;
            }
            Narrowed::User(user, cursor) => {
                request.users = vec![user];
                request.cursor = cursor;
            }
            Narrowed::Connections(connections) => request.connections = connections,
            Narrowed::Segment(segment, cursor) => {
                request.segment = Some(segment);
                request.cursor = cursor;
            }
        }
        request
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

    /// Whether the request goes to every connection (no users, topics or connections given),
    /// or to every connection of one segment when it has a [`segment`](Self::segment).
    pub fn is_broadcast(&self) -> bool {
        self.users.is_empty() && self.topics.is_empty() && self.connections.is_empty()
    }

    /// The payload each connection receives: `data` as compact JSON text.
    pub fn payload(&self) -> &str {
        self.data.get()
    }

    /// The request as JSON text in the documented format (empty lists are left out).
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
        map.end()
    }
}

fn as_strs<T: AsRef<str>>(ids: &[T]) -> Vec<&str> {
    ids.iter().map(AsRef::as_ref).collect()
}

fn id_list<T: Hash + Eq + Clone>(
    field: &'static str,
    value: &RawValue,
    parse: fn(String) -> Result<T, IdError>,
) -> Result<Vec<T>, RequestError> {
    let raw: Option<Vec<String>> = typed(field, "an array of strings or null", value)?;
    let mut seen = HashSet::new();
    let mut ids = Vec::new();
    for (index, text) in raw.unwrap_or_default().into_iter().enumerate() {
        let id = parse(text).map_err(|source| RequestError::InvalidId {
            field,
            index,
            source,
        })?;
        if seen.insert(id.clone()) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// The audience of a narrowed request (see [`NotificationRequest::narrowed_to`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Narrowed {
    /// Every connection of these users, from the start (users never overlap).
    Users(Vec<UserId>),
    /// One user's connections, from a cursor.
    User(UserId, Option<String>),
    /// One topic's subscribers, from a cursor.
    Topic(ExternalId, Option<String>),
    /// These connections (exclusions still apply).
    Connections(Vec<ConnectionId>),
    /// One broadcast segment, from a cursor.
    Segment(Segment, Option<String>),
}

/// `segment` on the wire.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SegmentField {
    index: u32,
    total: u32,
}

/// A field's value as `T`, or the error naming the field and what it must be.
fn typed<'a, T: Deserialize<'a>>(
    field: &'static str,
    expected: &'static str,
    value: &'a RawValue,
) -> Result<T, RequestError> {
    serde_json::from_str(value.get()).map_err(|source| RequestError::WrongType {
        field,
        expected,
        source,
    })
}

fn request_id(value: &RawValue) -> Result<Option<RequestId>, RequestError> {
    let raw: Option<String> = typed("id", "a string or null", value)?;
    raw.map(RequestId::parse)
        .transpose()
        .map_err(RequestError::InvalidRequestId)
}

fn segment(value: &RawValue) -> Result<Option<Segment>, RequestError> {
    let raw: Option<SegmentField> = typed(
        "segment",
        "an object {\"index\": integer, \"total\": integer} or null",
        value,
    )?;
    raw.map(|field| Segment::new(field.index, field.total))
        .transpose()
        .map_err(RequestError::InvalidSegment)
}

fn cursor(value: &RawValue) -> Result<Option<String>, RequestError> {
    let raw: Option<String> = typed("cursor", "a string or null", value)?;
    match raw {
        Some(text)
            if text.is_empty()
                || text.len() > MAX_CURSOR_BYTES
                || text.chars().any(char::is_control) =>
        {
            Err(RequestError::InvalidCursor {
                len: text.len(),
                max: MAX_CURSOR_BYTES,
            })
        }
        other => Ok(other),
    }
}

fn generation(value: &RawValue) -> Result<u32, RequestError> {
    let raw: Option<u32> = typed("generation", "a non-negative integer or null", value)?;
    match raw.unwrap_or(0) {
        value if value > MAX_GENERATION => Err(RequestError::GenerationTooHigh {
            value,
            max: MAX_GENERATION,
        }),
        value => Ok(value),
    }
}

fn compact_data(value: &RawValue) -> Result<Box<RawValue>, RequestError> {
    let compact = compact_json(value.get(), MAX_DATA_DEPTH).ok_or(RequestError::TooDeep {
        max: MAX_DATA_DEPTH,
    })?;
    if compact == "null" {
        return Err(RequestError::NullData);
    }
    if compact.len() > MAX_PAYLOAD_BYTES {
        return Err(RequestError::PayloadTooLarge {
            len: compact.len(),
            max: MAX_PAYLOAD_BYTES,
        });
    }
    RawValue::from_string(compact).map_err(RequestError::Syntax)
}

/// Removes the insignificant whitespace from valid JSON text, keeping everything else
/// byte for byte (key order, number spelling, escapes). `None` if arrays and objects nest
/// deeper than `max_depth`.
fn compact_json(json: &str, max_depth: usize) -> Option<String> {
    let mut out = String::with_capacity(json.len());
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
            match c {
                '"' => in_string = true,
                '[' | '{' => {
                    depth += 1;
                    if depth > max_depth {
                        return None;
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
            out.push(c);
        }
    }
    Some(out)
}

/// The top-level fields in the order given, duplicates kept so that they can be rejected
/// (serde_json's own maps silently keep the last one).
struct RawFields(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for RawFields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;

        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = RawFields;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a notification request object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawFields, A::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                    fields.push(entry);
                }
                Ok(RawFields(fields))
            }
        }

        deserializer.deserialize_map(FieldsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::IdKind;
    use crate::{RequestId, Segment};

    fn parse(json: &str) -> NotificationRequest {
        NotificationRequest::parse(json).expect("valid request")
    }

    fn reject(json: &str) -> RequestError {
        NotificationRequest::parse(json).expect_err("invalid request")
    }

    #[test]
    fn a_python_pusher_multicast_parses_with_its_users() {
        let request = parse(r#"{"users": ["u-1", "u-2"], "data": {"type": "notification"}}"#);

        assert_eq!(
            request
                .users()
                .iter()
                .map(UserId::as_str)
                .collect::<Vec<_>>(),
            ["u-1", "u-2"]
        );
        assert!(!request.is_broadcast());
    }

    #[test]
    fn a_request_with_only_data_is_a_broadcast() {
        assert!(parse(r#"{"data": {"type": "announcement"}}"#).is_broadcast());
    }

    #[test]
    fn empty_and_null_audience_lists_are_a_broadcast() {
        let request = parse(r#"{"users": [], "topics": null, "connections": [], "data": 1}"#);

        assert!(request.is_broadcast());
    }

    #[test]
    fn a_request_with_only_exclusions_is_a_broadcast_with_exclusions() {
        let request = parse(r#"{"exclude_users": ["u-1"], "data": {"status": "OFFLINE"}}"#);

        assert!(request.is_broadcast());
        assert_eq!(request.exclude_users()[0].as_str(), "u-1");
    }

    #[test]
    fn topics_connections_and_exclusions_are_all_read() {
        let request = parse(
            r#"{"topics":["room:42"],"connections":["c1"],"exclude_connections":["L0SM9cOFvHcCIhw="],"data":"x"}"#,
        );

        assert_eq!(request.topics()[0].as_str(), "room:42");
        assert_eq!(request.connections()[0].as_str(), "c1");
        assert_eq!(
            request.exclude_connections()[0].as_str(),
            "L0SM9cOFvHcCIhw="
        );
    }

    #[test]
    fn a_typo_in_a_field_name_is_rejected_instead_of_becoming_a_broadcast() {
        let error = reject(r#"{"user": ["u-1"], "data": {}}"#);

        assert!(matches!(&error, RequestError::UnknownField { field } if field == "user"));
        assert_eq!(error.field(), Some("user"));
        assert!(error.to_string().contains("unknown field `user`"));
    }

    #[test]
    fn a_request_without_data_is_rejected_naming_data() {
        let error = reject(r#"{"users": ["u-1"]}"#);

        assert!(matches!(error, RequestError::MissingData));
        assert_eq!(error.field(), Some("data"));
    }

    #[test]
    fn null_data_is_rejected() {
        assert!(matches!(
            reject(r#"{"data": null}"#),
            RequestError::NullData
        ));
    }

    #[test]
    fn a_field_given_twice_is_rejected_rather_than_silently_overwritten() {
        let error = reject(r#"{"users": ["a"], "users": [], "data": 1}"#);

        assert!(matches!(error, RequestError::DuplicateField { field } if field == "users"));
    }

    #[test]
    fn a_string_where_an_array_belongs_names_the_field() {
        let error = reject(r#"{"users": "u-1", "data": 1}"#);

        assert!(matches!(
            error,
            RequestError::WrongType { field: "users", .. }
        ));
        assert!(
            error
                .to_string()
                .starts_with("field `users` must be an array")
        );
    }

    #[test]
    fn the_redacted_error_never_quotes_the_value() {
        let error = reject(r#"{"users": "secret-value", "data": 1}"#);

        assert!(error.to_string().contains("secret-value"), "{error}");
        assert!(!error.redacted().contains("secret-value"));
        assert!(error.redacted().starts_with("field `users` must be"));
    }

    #[test]
    fn a_number_inside_an_id_list_names_the_field() {
        let error = reject(r#"{"exclude_connections": ["c1", 7], "data": 1}"#);

        assert_eq!(error.field(), Some("exclude_connections"));
    }

    #[test]
    fn an_invalid_id_names_the_field_its_position_and_the_rule() {
        let error = reject(r#"{"users": ["ok", ""], "data": 1}"#);

        assert!(matches!(
            error,
            RequestError::InvalidId {
                field: "users",
                index: 1,
                source: IdError::Empty { kind: IdKind::User }
            }
        ));
        assert_eq!(
            error.to_string(),
            "field `users[1]`: user ID must not be empty"
        );
    }

    #[test]
    fn a_connection_id_with_a_control_character_is_rejected() {
        let error = reject("{\"connections\": [\"c\\u0007\"], \"data\": 1}");

        assert!(matches!(
            error,
            RequestError::InvalidId {
                field: "connections",
                index: 0,
                ..
            }
        ));
    }

    #[test]
    fn data_is_kept_as_its_compact_json_text_in_the_given_key_order() {
        let request = parse(
            "{\"data\": {\"z\": 1,\n \"a\": [1.50, \"two words\", {\"q\": \"say \\\"hi\\\" \"}]}}",
        );

        assert_eq!(
            request.payload(),
            r#"{"z":1,"a":[1.50,"two words",{"q":"say \"hi\" "}]}"#
        );
    }

    #[test]
    fn a_string_data_is_sent_as_a_json_string() {
        assert_eq!(parse(r#"{"data": "hello"}"#).payload(), r#""hello""#);
    }

    #[test]
    fn data_of_exactly_128_kb_is_accepted_and_one_byte_more_is_rejected() {
        // A JSON string of n bytes including its two quotes.
        let of_size = |n: usize| format!(r#"{{"data": "{}"}}"#, "x".repeat(n - 2));

        assert_eq!(
            parse(&of_size(MAX_PAYLOAD_BYTES)).payload().len(),
            MAX_PAYLOAD_BYTES
        );
        let error = reject(&of_size(MAX_PAYLOAD_BYTES + 1));
        assert!(matches!(
            error,
            RequestError::PayloadTooLarge { len, max } if len == MAX_PAYLOAD_BYTES + 1 && max == MAX_PAYLOAD_BYTES
        ));
        assert_eq!(error.field(), Some("data"));
    }

    #[test]
    fn whitespace_does_not_count_towards_the_payload_limit() {
        let padded = format!(r#"{{"data": [1{}]}}"#, " ".repeat(MAX_PAYLOAD_BYTES));

        assert_eq!(parse(&padded).payload(), "[1]");
    }

    #[test]
    fn broken_json_is_a_syntax_error() {
        assert!(matches!(reject(r#"{"data": "#), RequestError::Syntax(_)));
        assert!(matches!(reject("not json"), RequestError::Syntax(_)));
    }

    #[test]
    fn a_json_array_is_not_a_request() {
        assert!(matches!(reject("[1, 2]"), RequestError::NotAnObject));
    }

    #[test]
    fn invalid_utf8_is_a_syntax_error_not_a_panic() {
        let error = NotificationRequest::parse_slice(b"{\"data\": \"\xff\"}").unwrap_err();

        assert!(matches!(error, RequestError::Syntax(_)));
        assert!(
            error
                .to_string()
                .ends_with("request is not UTF-8: invalid byte at offset 10"),
            "{error}"
        );
    }

    #[test]
    fn deep_nesting_in_a_list_field_is_a_type_error_naming_the_field() {
        let nested = format!(
            r#"{{"users": {}{}, "data": 1}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );

        let error = reject(&nested);

        assert_eq!(error.field(), Some("users"), "{error}");
    }

    #[test]
    fn a_huge_exclusion_list_is_read_whole() {
        let ids: Vec<String> = (0..200_000).map(|i| format!("\"u{i}\"")).collect();
        let json = format!(r#"{{"exclude_users": [{}], "data": 1}}"#, ids.join(","));

        assert_eq!(parse(&json).exclude_users().len(), 200_000);
    }

    #[test]
    fn a_huge_list_with_one_bad_id_names_its_position() {
        let mut ids: Vec<String> = (0..50_000).map(|i| format!("\"u{i}\"")).collect();
        ids[49_999] = "\"bad\\u0000id\"".to_owned();
        let json = format!(r#"{{"users": [{}], "data": 1}}"#, ids.join(","));

        let error = reject(&json);

        assert!(
            error
                .to_string()
                .starts_with("field `users[49999]`: user ID must not contain '\\0'"),
            "{error}"
        );
    }

    #[test]
    fn a_number_where_a_string_belongs_names_the_field() {
        for (json, field) in [
            (r#"{"id": 42, "data": 1}"#, "id"),
            (r#"{"cursor": 7, "topics": ["t"], "data": 1}"#, "cursor"),
            (
                r#"{"exclude_connections": [1], "data": 1}"#,
                "exclude_connections",
            ),
        ] {
            let error = reject(json);
            assert_eq!(error.field(), Some(field), "{json}: {error}");
        }
    }

    #[test]
    fn duplicate_keys_inside_data_are_the_producers_and_are_sent_as_written() {
        assert_eq!(
            parse(r#"{"data": {"a": 1, "a": 2}}"#).payload(),
            r#"{"a":1,"a":2}"#
        );
    }

    #[test]
    fn deeply_nested_data_is_rejected_without_overflowing_the_stack() {
        let nested =
            |depth: usize| format!(r#"{{"data": {}{}}}"#, "[".repeat(depth), "]".repeat(depth));

        assert!(NotificationRequest::parse(&nested(MAX_DATA_DEPTH)).is_ok());
        assert!(matches!(
            NotificationRequest::parse(&nested(100_000)),
            Err(RequestError::TooDeep {
                max: MAX_DATA_DEPTH
            })
        ));
    }

    #[test]
    fn brackets_inside_strings_do_not_count_as_nesting() {
        let text = format!(r#"{{"data": "{}"}}"#, "[".repeat(1_000));

        assert!(NotificationRequest::parse(&text).is_ok());
    }

    #[test]
    fn duplicate_ids_in_a_list_are_kept_once_in_first_seen_order() {
        let request = parse(r#"{"users": ["b", "a", "b", "a"], "data": 1}"#);

        assert_eq!(
            request
                .users()
                .iter()
                .map(UserId::as_str)
                .collect::<Vec<_>>(),
            ["b", "a"]
        );
    }

    #[test]
    fn a_request_serializes_back_to_the_format_it_was_parsed_from() {
        let text = r#"{"users":["u-1"],"exclude_connections":["c9"],"data":{"k":[1,2]}}"#;

        let request = parse(text);

        assert_eq!(request.to_json(), text);
        assert_eq!(parse(&request.to_json()), request);
    }

    #[test]
    fn the_pusher_fields_round_trip_through_the_format() {
        let text = r#"{"data":1,"id":"m-1","segment":{"index":3,"total":16},"cursor":"{\"pk\":\"c#a\"}","generation":2}"#;

        let request = parse(text);

        assert_eq!(request.id().map(RequestId::as_str), Some("m-1"));
        assert_eq!(request.segment(), Segment::new(3, 16).ok());
        assert_eq!(request.cursor(), Some(r#"{"pk":"c#a"}"#));
        assert_eq!(request.generation(), 2);
        assert_eq!(request.to_json(), text);
    }

    #[test]
    fn null_pusher_fields_are_the_same_as_absent_ones() {
        let request =
            parse(r#"{"data":1,"id":null,"segment":null,"cursor":null,"generation":null}"#);

        assert_eq!(request, parse(r#"{"data":1}"#));
    }

    #[test]
    fn a_segment_on_a_multicast_is_refused_by_name() {
        let error = reject(r#"{"users":["u"],"segment":{"index":0,"total":2},"data":1}"#);

        assert!(matches!(error, RequestError::SegmentNeedsBroadcast));
        assert_eq!(error.field(), Some("segment"));
    }

    #[test]
    fn a_segment_out_of_range_or_of_the_wrong_shape_is_refused_by_name() {
        for text in [
            r#"{"segment":{"index":2,"total":2},"data":1}"#,
            r#"{"segment":{"index":0,"total":0},"data":1}"#,
            r#"{"segment":"0/2","data":1}"#,
            r#"{"segment":{"index":0,"total":2,"extra":1},"data":1}"#,
            r#"{"segment":{"index":-1,"total":2},"data":1}"#,
        ] {
            let error = reject(text);
            assert_eq!(error.field(), Some("segment"), "{text}: {error}");
        }
    }

    #[test]
    fn a_cursor_needs_exactly_one_source() {
        for text in [
            r#"{"cursor":"k","data":1}"#,
            r#"{"users":["a","b"],"cursor":"k","data":1}"#,
            r#"{"users":["a"],"topics":["t"],"cursor":"k","data":1}"#,
            r#"{"connections":["c"],"cursor":"k","data":1}"#,
        ] {
            let error = reject(text);
            assert!(
                matches!(error, RequestError::CursorNeedsOneSource),
                "{text}: {error}"
            );
        }
        for text in [
            r#"{"users":["a"],"cursor":"k","data":1}"#,
            r#"{"topics":["t"],"cursor":"k","data":1}"#,
            r#"{"segment":{"index":0,"total":1},"cursor":"k","data":1}"#,
        ] {
            assert!(NotificationRequest::parse(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn an_empty_or_control_character_cursor_is_refused() {
        for text in [
            r#"{"users":["a"],"cursor":"","data":1}"#,
            r#"{"users":["a"],"cursor":"a\u0000b","data":1}"#,
        ] {
            let error = reject(text);
            assert!(
                matches!(error, RequestError::InvalidCursor { .. }),
                "{text}: {error}"
            );
        }
    }

    #[test]
    fn an_invalid_id_or_generation_is_refused_by_name() {
        assert_eq!(reject(r#"{"id":"a b","data":1}"#).field(), Some("id"));
        assert_eq!(reject(r#"{"id":7,"data":1}"#).field(), Some("id"));
        assert_eq!(
            reject(r#"{"generation":-1,"data":1}"#).field(),
            Some("generation")
        );
        assert_eq!(
            reject(r#"{"generation":"1","data":1}"#).field(),
            Some("generation")
        );
        assert!(matches!(
            reject(r#"{"generation":101,"data":1}"#),
            RequestError::GenerationTooHigh {
                value: 101,
                max: 100
            }
        ));
    }
}
