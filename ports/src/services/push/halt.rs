//! The flag a post raises when it shows that no other post of the push can succeed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::gateway::GatewayError;

/// Set once a post shows that no other post can succeed (the gateway refused access): the
/// readers stop reading and the senders stop posting.
#[derive(Default)]
pub(crate) struct Halt {
    halted: AtomicBool,
    error: Mutex<Option<Arc<GatewayError>>>,
}

impl Halt {
    /// Halts the push for `error`; the first error is the one kept.
    pub(crate) fn set(&self, error: Arc<GatewayError>) {
        if let Ok(mut slot) = self.error.lock() {
            slot.get_or_insert(error);
        }
        self.halted.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_set(&self) -> bool {
        self.halted.load(Ordering::Relaxed)
    }

    /// The error that halted the push, if one did.
    pub(crate) fn error(&self) -> Option<Arc<GatewayError>> {
        self.error.lock().ok().and_then(|slot| slot.clone())
    }
}
