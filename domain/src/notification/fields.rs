//! Reading a request's fields: each one by name, in the order given, duplicates and
//! unknown names refused, every value typed and checked.

use std::collections::HashSet;
use std::fmt;
use std::hash::Hash;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::history::{Epoch, MAX_EPOCH_CHARS, Position};
use crate::ids::{ConnectionId, ExternalId, IdError, RequestId, UserId};
use crate::limits::{MAX_CURSOR_BYTES, MAX_GENERATION};
use crate::notification::NotificationRequest;
use crate::notification::error::RequestError;
use crate::notification::json::compact_data;
use crate::segment::Segment;

/// The fields a notification request may have.
pub const FIELDS: [&str; 12] = [
    "users",
    "topics",
    "connections",
    "broadcast",
    "exclude_users",
    "exclude_connections",
    "data",
    "id",
    "segment",
    "cursor",
    "generation",
    "positions",
];
impl NotificationRequest {
    pub(super) fn from_fields(fields: Vec<(String, Box<RawValue>)>) -> Result<Self, RequestError> {
        let mut seen: Vec<&'static str> = Vec::with_capacity(fields.len());
        let mut request = Self {
            users: Vec::new(),
            topics: Vec::new(),
            connections: Vec::new(),
            exclude_users: Vec::new(),
            exclude_connections: Vec::new(),
            broadcast: false,
            refuses_broadcast: false,
            data: RawValue::from_string("null".to_owned()).map_err(RequestError::Syntax)?,
            id: None,
            segment: None,
            cursor: None,
            generation: 0,
            positions: None,
        };
        let mut said_broadcast = None;
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
                "broadcast" => said_broadcast = typed(field, "true, false or null", &value)?,
                "id" => request.id = request_id(&value)?,
                "segment" => request.segment = segment(&value)?,
                "cursor" => request.cursor = cursor(&value)?,
                "generation" => request.generation = generation(&value)?,
                "positions" => request.positions = positions(&value)?,
                _ => request.data = compact_data(&value)?,
            }
        }
        if !seen.contains(&"data") {
            return Err(RequestError::MissingData);
        }
        let lists_given = ["users", "topics", "connections"]
            .iter()
            .any(|list| seen.contains(list));
        match said_broadcast {
            Some(true) if lists_given => return Err(RequestError::BroadcastWithAudience),
            Some(said) => {
                request.broadcast = said;
                request.refuses_broadcast = !said;
            }
            None => request.broadcast = !lists_given,
        }
        request.check_resume_fields()?;
        Ok(request)
    }

    /// `segment` only on a broadcast, `cursor` only on a request with one source.
    fn check_resume_fields(&self) -> Result<(), RequestError> {
        if self.segment.is_some() && !self.broadcast {
            return Err(RequestError::SegmentNeedsBroadcast);
        }
        let one_source = self.segment.is_some()
            || (self.connections.is_empty() && self.users.len() + self.topics.len() == 1);
        if self.cursor.is_some() && !one_source {
            return Err(RequestError::CursorNeedsOneSource);
        }
        Ok(())
    }
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
/// `segment` on the wire.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SegmentField {
    pub(super) index: u32,
    pub(super) total: u32,
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
/// One position on the wire.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PositionField {
    seq: u64,
    epoch: String,
}

/// `positions`: where the request sits in each of its history streams, set by the pusher on
/// the continuations of a request it appended (so that they are sent the same envelope and
/// never appended again).
fn positions(value: &RawValue) -> Result<Option<Vec<(ExternalId, Position)>>, RequestError> {
    let raw: Option<std::collections::BTreeMap<String, PositionField>> = typed(
        "positions",
        "an object of {\"seq\": integer >= 0, \"epoch\": string} by stream, or null",
        value,
    )?;
    let Some(raw) = raw else {
        return Ok(None);
    };
    let mut positions = Vec::with_capacity(raw.len());
    for (stream, field) in raw {
        let stream =
            ExternalId::parse(stream.clone()).map_err(|error| RequestError::InvalidPosition {
                stream: stream.clone(),
                problem: error.to_string(),
            })?;
        let epoch = Epoch::parse(field.epoch).ok_or_else(|| RequestError::InvalidPosition {
            stream: stream.to_string(),
            problem: format!("`epoch` must be 1 to {MAX_EPOCH_CHARS} visible ASCII characters"),
        })?;
        positions.push((
            stream,
            Position {
                seq: field.seq,
                epoch,
            },
        ));
    }
    Ok(Some(positions))
}

/// The top-level fields in the order given, duplicates kept so that they can be rejected
/// (serde_json's own maps silently keep the last one).
pub(super) struct RawFields(pub(super) Vec<(String, Box<RawValue>)>);

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
