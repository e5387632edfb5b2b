//! The open sockets, by connection ID.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use tokio::sync::mpsc;

/// What the gateway sends down a socket.
#[derive(Debug)]
pub enum Outbound {
    /// A text frame.
    Text(String),
    /// A close frame with this code and reason, then the end of the socket.
    Close(u16, &'static str),
}

/// One open socket.
#[derive(Debug)]
pub struct Live {
    pub tx: mpsc::UnboundedSender<Outbound>,
    pub connected_at_ms: u64,
    pub last_active_ms: AtomicU64,
    pub source_ip: String,
    pub user_agent: Option<String>,
}

/// The open sockets. Short critical sections only, never across an `.await`.
#[derive(Debug, Clone, Default)]
pub struct Registry(Arc<RwLock<HashMap<String, Arc<Live>>>>);

impl Registry {
    pub fn insert(&self, id: String, live: Live) {
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Arc::new(live));
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Live>> {
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id)
    }

    pub fn get(&self, id: &str) -> Option<Arc<Live>> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    pub fn ids(&self) -> Vec<String> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }

    pub fn touch(live: &Live, now_ms: u64) {
        live.last_active_ms.store(now_ms, Ordering::Relaxed);
    }
}

/// A new connection ID in API Gateway's format: 16 characters of base64 (11 random bytes),
/// such as `L0SM9cOFvHcCIhw=`. The URL-safe alphabet (`-` and `_` for `+` and `/`) keeps the
/// ID usable unescaped in `@connections/{id}` paths, for curl users.
pub fn new_connection_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes: [u8; 11] = std::array::from_fn(|_| fastrand::u8(..));
    let mut id = String::with_capacity(16);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, byte)| n | u32::from(*byte) << (16 - 8 * i));
        let symbols = chunk.len() + 1;
        for i in 0..4 {
            if i < symbols {
                id.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                id.push('=');
            }
        }
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use wspush_domain::ConnectionId;

    #[test]
    fn connection_ids_look_like_api_gateways_and_are_valid() {
        let ids: Vec<String> = (0..1_000).map(|_| new_connection_id()).collect();

        for id in &ids {
            assert_eq!(id.len(), 16, "{id}");
            assert!(id.ends_with('=') && !id.ends_with("=="), "{id}");
            assert!(ConnectionId::parse(id.as_str()).is_ok(), "{id}");
            assert!(
                !id.contains('/') && !id.contains('+'),
                "{id} must be URL-safe"
            );
        }
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
    }
}
