//! The connections and their subscriptions, held compactly: the local gateway keeps its
//! whole audience here, so each connection costs what its ID, its user and its topics take
//! once, plus one entry in each index.
//!
//! - one record per connection, keyed by its ID, holding its user, times, grants and the
//!   topics it holds (inline when it holds one);
//! - one index entry per connection for its user, and one per subscription for its topic,
//!   each a `(owner, connection)` pair in one ordered set, so that one owner's connections
//!   are one range in connection ID order (the order pages and their cursors follow);
//! - the text of every ID once: IDs share their text when cloned, and a user or topic that
//!   is already indexed is stored as the indexed value, so 10,000 subscribers of one topic
//!   share one copy of its name.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use wspush_domain::{Connection, ConnectionId, ExternalId, Timestamp, TopicGrants, UserId};
use wspush_ports::{Cursor, Page, StoreError};

/// The connections, who they belong to and what they hold.
#[derive(Debug, Default)]
pub(super) struct Connections {
    records: BTreeMap<ConnectionId, Record>,
    by_user: Index<UserId>,
    by_topic: Index<ExternalId>,
}

/// One connection as stored (its ID is the key).
#[derive(Debug)]
struct Record {
    user: UserId,
    connected_at: Timestamp,
    expires_at: Timestamp,
    /// Boxed: most connections have none, and `None` then costs one word.
    grants: Option<Box<TopicGrants>>,
    topics: Topics,
}

impl Record {
    fn is_live_at(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }

    fn connection(&self, id: &ConnectionId) -> Connection {
        Connection::restore(
            id.clone(),
            self.user.clone(),
            self.connected_at,
            self.expires_at,
        )
        .with_grants(self.grants.as_deref().cloned())
    }
}

impl Connections {
    /// How many connections are stored, expired ones included.
    pub(super) fn len(&self) -> usize {
        self.records.len()
    }

    /// Stores `connection`, replacing one with its ID but keeping the topics that one held.
    pub(super) fn save(&mut self, connection: &Connection) {
        let user = self
            .by_user
            .stored(connection.user())
            .unwrap_or_else(|| connection.user().clone());
        let grants = connection.grants().cloned().map(Box::new);
        let Some((id, _)) = self.records.get_key_value(connection.id()) else {
            let id = connection.id().clone();
            self.by_user.insert(user.clone(), id.clone());
            let record = Record {
                user,
                connected_at: connection.connected_at(),
                expires_at: connection.expires_at(),
                grants,
                topics: Topics::default(),
            };
            self.records.insert(id, record);
            return;
        };
        // Saved again: the stored ID's text stays the one every index shares.
        let id = id.clone();
        if let Some(record) = self.records.get_mut(&id) {
            if record.user != user {
                self.by_user.remove(&record.user, &id);
                self.by_user.insert(user.clone(), id.clone());
            }
            record.user = user;
            record.connected_at = connection.connected_at();
            record.expires_at = connection.expires_at();
            record.grants = grants;
        }
    }

    /// Removes a connection and its subscriptions: the topics it held, or `None` when it was
    /// not stored.
    pub(super) fn remove(&mut self, id: &ConnectionId) -> Option<Vec<ExternalId>> {
        let (id, record) = self.records.remove_entry(id)?;
        self.by_user.remove(&record.user, &id);
        let topics = record.topics.into_vec();
        for topic in &topics {
            self.by_topic.remove(topic, &id);
        }
        Some(topics)
    }

    /// The connection, if it is stored and live at `now`.
    pub(super) fn live(&self, id: &ConnectionId, now: Timestamp) -> Option<Connection> {
        self.live_record(id, now)
            .map(|record| record.connection(id))
    }

    fn live_record(&self, id: &ConnectionId, now: Timestamp) -> Option<&Record> {
        self.records.get(id).filter(|record| record.is_live_at(now))
    }

    /// The connections that have expired at `now`.
    pub(super) fn expired(&self, now: Timestamp) -> Vec<ConnectionId> {
        self.records
            .iter()
            .filter(|(_, record)| !record.is_live_at(now))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The topics a connection holds, in order.
    pub(super) fn topics(&self, id: &ConnectionId) -> Vec<ExternalId> {
        self.records
            .get(id)
            .map(|record| record.topics.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Subscribes a live connection to `topics` unless it would then hold more than `max`.
    pub(super) fn subscribe_at_most(
        &mut self,
        id: &ConnectionId,
        topics: &[ExternalId],
        max: usize,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let Some(record) = self.live_record(id, now) else {
            return Err(StoreError::ConnectionNotFound(id.clone()));
        };
        let held = record.topics.len();
        let adding = topics
            .iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|topic| !record.topics.contains(topic))
            .count();
        if held.saturating_add(adding) > max {
            return Err(StoreError::SubscriptionLimit { held, adding, max });
        }
        for topic in topics {
            let topic = self.by_topic.stored(topic).unwrap_or_else(|| topic.clone());
            if self.by_topic.insert(topic.clone(), id.clone())
                && let Some(record) = self.records.get_mut(id)
            {
                record.topics.insert(topic);
            }
        }
        Ok(())
    }

    /// Unsubscribes a connection from `topics` it holds; the others are ignored.
    pub(super) fn unsubscribe(&mut self, id: &ConnectionId, topics: &[ExternalId]) {
        for topic in topics {
            self.by_topic.remove(topic, id);
            if let Some(record) = self.records.get_mut(id) {
                record.topics.remove(topic);
            }
        }
    }

    /// Whether a connection live at `now` holds `topic`.
    pub(super) fn audience_includes(
        &self,
        topic: &ExternalId,
        id: &ConnectionId,
        now: Timestamp,
    ) -> bool {
        self.by_topic.contains(topic, id) && self.live_record(id, now).is_some()
    }

    /// A page of the user's live connections after `cursor`, examining at most `limit`.
    pub(super) fn user_page(
        &self,
        user: &UserId,
        cursor: Option<&ConnectionId>,
        limit: usize,
        now: Timestamp,
    ) -> Page {
        self.page_of(self.by_user.held_by(user, cursor), limit, now)
    }

    /// A page of the topic's live subscribers after `cursor`, examining at most `limit`.
    pub(super) fn topic_page(
        &self,
        topic: &ExternalId,
        cursor: Option<&ConnectionId>,
        limit: usize,
        now: Timestamp,
    ) -> Page {
        self.page_of(self.by_topic.held_by(topic, cursor), limit, now)
    }

    /// A page of the live connections for which `include` holds, after `cursor`, examining
    /// at most `limit` of those.
    pub(super) fn all_page(
        &self,
        include: impl Fn(&ConnectionId) -> bool,
        cursor: Option<&ConnectionId>,
        limit: usize,
        now: Timestamp,
    ) -> Page {
        let start = cursor.map_or(Bound::Unbounded, Bound::Excluded);
        let ids = self
            .records
            .range::<ConnectionId, _>((start, Bound::Unbounded))
            .map(|(id, _)| id)
            .filter(|id| include(id));
        self.page_of(ids, limit, now)
    }

    /// A page of the live connections among `ids`.
    pub(super) fn listed_page(&self, ids: &[ConnectionId], now: Timestamp) -> Vec<Connection> {
        ids.iter().filter_map(|id| self.live(id, now)).collect()
    }

    fn page_of<'a>(
        &self,
        ids: impl Iterator<Item = &'a ConnectionId>,
        limit: usize,
        now: Timestamp,
    ) -> Page {
        let mut examined = ids.peekable();
        let mut page = Page::default();
        let mut last = None;
        for id in examined.by_ref().take(limit) {
            last = Some(id);
            if let Some(connection) = self.live(id, now) {
                page.connections.push(connection);
            }
        }
        if examined.peek().is_some() {
            page.next = last.map(|id| Cursor::new(id.as_str()));
        }
        page
    }
}

/// Which connections each owner (a user, a topic) holds: `(owner, Some(connection))` pairs in
/// order. `None` is never stored; it sorts before every connection, as the bound where an
/// owner's range starts.
#[derive(Debug)]
struct Index<O>(BTreeSet<(O, Option<ConnectionId>)>);

impl<O> Default for Index<O> {
    fn default() -> Self {
        Self(BTreeSet::new())
    }
}

impl<O: Ord + Clone> Index<O> {
    /// Whether the pair was new.
    fn insert(&mut self, owner: O, connection: ConnectionId) -> bool {
        self.0.insert((owner, Some(connection)))
    }

    fn remove(&mut self, owner: &O, connection: &ConnectionId) {
        self.0.remove(&(owner.clone(), Some(connection.clone())));
    }

    fn contains(&self, owner: &O, connection: &ConnectionId) -> bool {
        self.0.contains(&(owner.clone(), Some(connection.clone())))
    }

    /// The owner as stored, if it holds a connection: the copy of its text to share.
    fn stored(&self, owner: &O) -> Option<O> {
        self.held_from(owner, Bound::Included((owner.clone(), None)))
            .next()
            .map(|(owner, _)| owner.clone())
    }

    /// The owner's connections after `cursor`, in order.
    fn held_by<'a>(
        &'a self,
        owner: &'a O,
        cursor: Option<&ConnectionId>,
    ) -> impl Iterator<Item = &'a ConnectionId> + 'a {
        let start = match cursor {
            Some(cursor) => Bound::Excluded((owner.clone(), Some(cursor.clone()))),
            None => Bound::Included((owner.clone(), None)),
        };
        self.held_from(owner, start)
            .filter_map(|(_, connection)| connection.as_ref())
    }

    fn held_from<'a>(
        &'a self,
        owner: &'a O,
        start: Bound<(O, Option<ConnectionId>)>,
    ) -> impl Iterator<Item = &'a (O, Option<ConnectionId>)> + 'a {
        self.0
            .range((start, Bound::Unbounded))
            .take_while(move |(held_by, _)| held_by == owner)
    }
}

/// The topics one connection holds, in order: none or one inline, more on the heap.
#[derive(Debug, Default)]
enum Topics {
    #[default]
    None,
    One(ExternalId),
    Many(Box<[ExternalId]>),
}

impl Topics {
    fn as_slice(&self) -> &[ExternalId] {
        match self {
            Self::None => &[],
            Self::One(topic) => std::slice::from_ref(topic),
            Self::Many(topics) => topics,
        }
    }

    fn iter(&self) -> impl Iterator<Item = &ExternalId> {
        self.as_slice().iter()
    }

    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn contains(&self, topic: &ExternalId) -> bool {
        self.as_slice().binary_search(topic).is_ok()
    }

    fn into_vec(self) -> Vec<ExternalId> {
        match self {
            Self::None => Vec::new(),
            Self::One(topic) => vec![topic],
            Self::Many(topics) => topics.into_vec(),
        }
    }

    fn from_vec(mut topics: Vec<ExternalId>) -> Self {
        match topics.len() {
            0 => Self::None,
            1 => topics.pop().map_or(Self::None, Self::One),
            _ => Self::Many(topics.into_boxed_slice()),
        }
    }

    fn insert(&mut self, topic: ExternalId) {
        if let Err(at) = self.as_slice().binary_search(&topic) {
            let mut topics = std::mem::take(self).into_vec();
            topics.insert(at, topic);
            *self = Self::from_vec(topics);
        }
    }

    fn remove(&mut self, topic: &ExternalId) {
        if let Ok(at) = self.as_slice().binary_search(topic) {
            let mut topics = std::mem::take(self).into_vec();
            topics.remove(at);
            *self = Self::from_vec(topics);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str) -> ExternalId {
        ExternalId::parse(name).expect("valid")
    }

    #[test]
    fn topics_stay_ordered_and_unique_through_inserts_and_removals() {
        let mut topics = Topics::default();
        for name in ["room:3", "room:1", "room:2", "room:1"] {
            topics.insert(topic(name));
        }
        assert_eq!(
            topics.iter().map(ExternalId::as_str).collect::<Vec<_>>(),
            ["room:1", "room:2", "room:3"]
        );
        topics.remove(&topic("room:2"));
        topics.remove(&topic("room:9"));
        assert!(topics.contains(&topic("room:3")) && !topics.contains(&topic("room:2")));
        topics.remove(&topic("room:1"));
        assert!(matches!(topics, Topics::One(_)), "{topics:?}");
        topics.remove(&topic("room:3"));
        assert!(matches!(topics, Topics::None), "{topics:?}");
    }

    #[test]
    fn subscribers_of_a_topic_share_one_copy_of_its_name() {
        let mut connections = Connections::default();
        let now = Timestamp::from_unix_millis(1_000);
        for index in 0..3 {
            let connection = Connection::open(
                ConnectionId::parse(format!("c{index}")).expect("valid"),
                UserId::parse("u-1").expect("valid"),
                now,
            );
            connections.save(&connection);
            // Each subscriber names the topic with its own copy, as requests do.
            connections
                .subscribe_at_most(connection.id(), &[topic("room:1")], 10, now)
                .expect("subscribed");
        }

        let stored: Vec<_> = connections.records.values().collect();
        let first = stored[0].topics.as_slice()[0].as_str().as_ptr();
        assert!(
            stored
                .iter()
                .all(|record| record.topics.as_slice()[0].as_str().as_ptr() == first)
        );
        let user = stored[0].user.as_str().as_ptr();
        assert!(
            stored
                .iter()
                .all(|record| record.user.as_str().as_ptr() == user)
        );
        let page = connections.topic_page(&topic("room:1"), None, 10, now);
        assert_eq!(page.connections.len(), 3);
    }
}
