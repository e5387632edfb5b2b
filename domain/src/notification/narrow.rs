//! Narrowing: the same `data` to part of the audience, the requests continuations are
//! made of.

use crate::ids::{ConnectionId, ExternalId, UserId};
use crate::notification::NotificationRequest;
use crate::segment::Segment;

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
impl NotificationRequest {
    /// A request that names nobody yet, sent to `data`: the base of the narrowed requests
    /// that continuations are made of (an empty narrowing stays one that reaches nobody).
    fn with_data_of(&self) -> Self {
        Self {
            users: Vec::new(),
            topics: Vec::new(),
            connections: Vec::new(),
            exclude_users: Vec::new(),
            exclude_connections: Vec::new(),
            broadcast: false,
            refuses_broadcast: false,
            data: self.data.clone(),
            id: None,
            segment: None,
            cursor: None,
            generation: self.generation,
            positions: self.positions.clone(),
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
                request.broadcast = true;
                request.segment = Some(segment);
                request.cursor = cursor;
            }
        }
        request
    }
}
