//! Who hears about each finished push: metrics, audit trails.

use wspush_domain::NotificationRequest;

use crate::report::PushReport;

/// Told about every push when it finishes, with its request and report. Called on the
/// pushing task: keep it quick (write a line, bump a counter), never block on I/O that can
/// stall.
pub trait PushObserver: Send + Sync {
    /// `request` has been pushed with this outcome.
    fn pushed(&self, request: &NotificationRequest, report: &PushReport);
}
