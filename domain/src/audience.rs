//! Who receives a notification request.
//!
//! A request's audience is read from a store as a set of [`Source`]s (each user, each topic,
//! the explicit connections, or the whole table split into [`Segment`]s for a broadcast), and
//! every connection read goes through [`Targeting`], which applies the exclusions and makes
//! sure each connection is admitted at most once.

use std::collections::HashSet;

use crate::connection::Connection;
use crate::ids::{ConnectionId, ExternalId, UserId};
use crate::notification::NotificationRequest;
use crate::segment::Segment;

/// One place a store reads an audience from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Every live connection of a user.
    User(UserId),
    /// Every live connection subscribed to an external ID.
    Topic(ExternalId),
    /// These connections, if they are live.
    Connections(Vec<ConnectionId>),
    /// Every live connection in one segment of the store (a broadcast).
    All(Segment),
}

impl Source {
    /// The sources that make up a request's audience; a broadcast is read in `segments`
    /// shares, or in its own one segment when it names one.
    pub fn for_request(request: &NotificationRequest, segments: &[Segment]) -> Vec<Source> {
        if let Some(segment) = request.segment() {
            return vec![Source::All(segment)];
        }
        if request.is_broadcast() {
            return segments.iter().copied().map(Source::All).collect();
        }
        let mut sources: Vec<Source> = request.users().iter().cloned().map(Source::User).collect();
        sources.extend(request.topics().iter().cloned().map(Source::Topic));
        if !request.connections().is_empty() {
            sources.push(Source::Connections(request.connections().to_vec()));
        }
        sources
    }
}

/// What [`Targeting`] decided for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Send to it.
    Admit,
    /// Its user or its ID is excluded.
    Excluded,
    /// It was already admitted through another source.
    Duplicate,
}

/// Applies a request's exclusions and admits each connection at most once.
///
/// Exclusions are hash sets, so they have no size cap and cost O(1) per connection.
/// Duplicates can only arise when sources overlap (several topics, or users together with
/// topics or connections); only then are admitted IDs remembered, so a plain broadcast or
/// multicast to users keeps no per-connection state.
#[derive(Debug, Clone)]
pub struct Targeting {
    exclude_users: HashSet<UserId>,
    exclude_connections: HashSet<ConnectionId>,
    admitted: Option<HashSet<ConnectionId>>,
}

impl Targeting {
    /// The targeting of `request`.
    pub fn for_request(request: &NotificationRequest) -> Self {
        let sources_overlap = request.sources_overlap();
        Self {
            exclude_users: request.exclude_users().iter().cloned().collect(),
            exclude_connections: request.exclude_connections().iter().cloned().collect(),
            admitted: sources_overlap.then(HashSet::new),
        }
    }

    /// Whether this targeting remembers admitted IDs (the request's sources overlap).
    pub fn deduplicates(&self) -> bool {
        self.admitted.is_some()
    }

    /// Decides whether `connection` receives the request. Call it once per connection read.
    pub fn admit(&mut self, connection: &Connection) -> Admission {
        if self.exclude_connections.contains(connection.id())
            || self.exclude_users.contains(connection.user())
        {
            return Admission::Excluded;
        }
        match &mut self.admitted {
            Some(admitted) => {
                if admitted.insert(connection.id().clone()) {
                    Admission::Admit
                } else {
                    Admission::Duplicate
                }
            }
            None => Admission::Admit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    fn connection(id: &str, user: &str) -> Connection {
        Connection::open(
            ConnectionId::parse(id).expect("valid"),
            UserId::parse(user).expect("valid"),
            Timestamp::EPOCH,
        )
    }

    fn request(json: &str) -> NotificationRequest {
        NotificationRequest::parse(json).expect("valid")
    }

    #[test]
    fn a_broadcast_reads_every_segment_of_the_store() {
        let segments = Segment::all(4).expect("valid");

        let sources = Source::for_request(&request(r#"{"data":1}"#), &segments);

        assert_eq!(sources.len(), 4);
        assert_eq!(sources[3], Source::All(Segment::new(3, 4).expect("valid")));
    }

    #[test]
    fn a_multicast_reads_each_user_each_topic_and_the_connections_once() {
        let sources = Source::for_request(
            &request(r#"{"users":["u1","u2"],"topics":["t"],"connections":["c1","c2"],"data":1}"#),
            &[Segment::WHOLE],
        );

        assert_eq!(
            sources,
            vec![
                Source::User(UserId::parse("u1").expect("valid")),
                Source::User(UserId::parse("u2").expect("valid")),
                Source::Topic(ExternalId::parse("t").expect("valid")),
                Source::Connections(vec![
                    ConnectionId::parse("c1").expect("valid"),
                    ConnectionId::parse("c2").expect("valid")
                ]),
            ]
        );
    }

    #[test]
    fn a_user_in_two_targeted_topics_is_admitted_once() {
        let mut targeting = Targeting::for_request(&request(r#"{"topics":["a","b"],"data":1}"#));
        let shared = connection("c1", "u1");

        assert_eq!(targeting.admit(&shared), Admission::Admit);
        assert_eq!(targeting.admit(&shared), Admission::Duplicate);
    }

    #[test]
    fn a_connection_targeted_by_user_and_by_id_is_admitted_once() {
        let mut targeting = Targeting::for_request(&request(
            r#"{"users":["u1"],"connections":["c1"],"data":1}"#,
        ));
        let c1 = connection("c1", "u1");

        assert_eq!(targeting.admit(&c1), Admission::Admit);
        assert_eq!(targeting.admit(&c1), Admission::Duplicate);
    }

    #[test]
    fn exclusion_of_the_senders_connection_skips_only_that_connection() {
        let mut targeting = Targeting::for_request(&request(
            r#"{"topics":["room:1"],"exclude_connections":["sender"],"data":1}"#,
        ));

        assert_eq!(
            targeting.admit(&connection("sender", "u1")),
            Admission::Excluded
        );
        assert_eq!(
            targeting.admit(&connection("other-tab", "u1")),
            Admission::Admit
        );
    }

    #[test]
    fn an_excluded_user_is_skipped_even_when_targeted_by_connection_id() {
        let mut targeting = Targeting::for_request(&request(
            r#"{"connections":["c1"],"exclude_users":["u1"],"data":1}"#,
        ));

        assert_eq!(
            targeting.admit(&connection("c1", "u1")),
            Admission::Excluded
        );
    }

    #[test]
    fn exclusions_have_no_size_cap() {
        let excluded: Vec<String> = (0..5_000).map(|i| format!("\"u{i}\"")).collect();
        let mut targeting = Targeting::for_request(&request(&format!(
            r#"{{"exclude_users":[{}],"data":1}}"#,
            excluded.join(",")
        )));

        assert_eq!(
            targeting.admit(&connection("c", "u4999")),
            Admission::Excluded
        );
        assert_eq!(targeting.admit(&connection("c", "u5000")), Admission::Admit);
    }

    #[test]
    fn a_broadcast_keeps_no_per_connection_state() {
        let targeting = Targeting::for_request(&request(r#"{"data":1}"#));

        assert!(targeting.admitted.is_none());
    }
}
