//! The use-case services against mockall mocks of the gateway and the real in-memory store.

mod connections;
mod delivery;
mod helpers;
mod push;
mod subscriptions;
mod targeting;
