//! The clock port.

use wspush_domain::Timestamp;

/// Tells the time. Injected so that expiry can be tested without waiting.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    /// The current time. MUST never go backwards by more than the host clock does.
    fn now(&self) -> Timestamp;
}
