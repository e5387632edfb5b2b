//! The use cases, written against the ports only.

pub mod connections;
pub mod push;
pub mod resume;
pub mod subscriptions;
