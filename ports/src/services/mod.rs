//! The use cases, written against the ports only.

pub mod connections;
pub mod control;
pub mod presence;
pub mod push;
pub mod resume;
pub mod subscriptions;
