//! Virtual connections: connection IDs the `@connections` API accepts posts for without a
//! socket behind them. Benchmarks and load tests register thousands of them (more than one
//! machine can hold as real sockets) and read back how many messages each one received.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{PoisonError, RwLock};

use serde::Serialize;

/// The virtual connections and the messages each has received.
#[derive(Debug, Default)]
pub struct VirtualConnections(RwLock<HashMap<String, AtomicU32>>);

/// How the messages posted to the virtual connections were spread among them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct VirtualTally {
    /// Virtual connections registered.
    pub connections: usize,
    /// Messages received, in all.
    pub messages: u64,
    /// Connections that received nothing.
    pub unreached: usize,
    /// Connections that received exactly one message.
    pub exactly_once: usize,
    /// Connections that received more than one.
    pub more_than_once: usize,
}

impl VirtualConnections {
    /// Replaces every virtual connection with `ids`, each with nothing received.
    pub fn replace(&self, ids: impl IntoIterator<Item = String>) {
        let fresh: HashMap<String, AtomicU32> =
            ids.into_iter().map(|id| (id, AtomicU32::new(0))).collect();
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = fresh;
    }

    /// Counts a message for `id`; false if `id` is not a virtual connection.
    pub fn receive(&self, id: &str) -> bool {
        let map = self.0.read().unwrap_or_else(PoisonError::into_inner);
        match map.get(id) {
            Some(received) => {
                received.fetch_add(1, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Whether `id` is a virtual connection.
    pub fn contains(&self, id: &str) -> bool {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(id)
    }

    /// Forgets `id` (a `DELETE @connections/{id}`); false if it was not there.
    pub fn remove(&self, id: &str) -> bool {
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id)
            .is_some()
    }

    /// What the virtual connections have received so far.
    pub fn tally(&self) -> VirtualTally {
        let map = self.0.read().unwrap_or_else(PoisonError::into_inner);
        let mut tally = VirtualTally {
            connections: map.len(),
            ..VirtualTally::default()
        };
        for received in map.values() {
            let received = received.load(Ordering::Relaxed);
            tally.messages += u64::from(received);
            match received {
                0 => tally.unreached += 1,
                1 => tally.exactly_once += 1,
                _ => tally.more_than_once += 1,
            }
        }
        tally
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tally_counts_what_each_connection_received() {
        let virtuals = VirtualConnections::default();
        virtuals.replace(["a", "b", "c", "d"].map(String::from));

        assert!(virtuals.receive("a"));
        assert!(virtuals.receive("b"));
        assert!(virtuals.receive("b"));
        assert!(!virtuals.receive("zzz"));
        assert!(virtuals.remove("d"));
        assert!(!virtuals.remove("d"));

        assert_eq!(
            virtuals.tally(),
            VirtualTally {
                connections: 3,
                messages: 3,
                unreached: 1,
                exactly_once: 1,
                more_than_once: 1,
            }
        );
        virtuals.replace(["e".to_owned()]);
        assert_eq!(virtuals.tally().unreached, 1);
        assert_eq!(virtuals.tally().messages, 0);
    }
}
