//! The local gateway: API Gateway WebSockets on a laptop, with no AWS account and no Docker.
//!
//! What belongs here: a WebSocket endpoint that builds real `$connect`, route and
//! `$disconnect` events and hands them to the same handlers the Lambdas run; an `@connections`
//! management API that answers like API Gateway's (so the real `ApiGatewayGateway` adapter
//! works against it unchanged); a `POST /notifications` intake that runs the pusher handler
//! in-process; API Gateway's idle and maximum-duration limits; fault and latency injection
//! for tests and benchmarks; and [`client`], the plain HTTP client of its routes that the CLI
//! and the tests share. The rooms: `config` (the options), `state` (what the handlers share),
//! `routes` (every route), `guard` (the hosts and origins it answers), `gateway`
//! (start-up), `socket`, `management`, `events`,
//! `registry`, `faults`, `virtuals`, and `functions`, which runs the deployable `bootstrap`
//! binaries under a Lambda Runtime API of its own instead of the in-process handlers
//! (`--lambdas DIR`).
//!
//! What must not: business rules. Everything wspush decides is decided by the handlers and
//! services, exactly as in Lambda.

pub mod client;
mod config;
mod events;
mod faults;
mod functions;
mod gateway;
mod guard;
mod management;
mod queue;
mod registry;
mod routes;
mod socket;
mod state;
mod virtuals;

pub use config::{LocalConfig, StoreChoice};
pub use faults::Faults;
pub use functions::{FunctionsConfig, FunctionsError, InvokeError, SqsEndpoint, TemplateError};
pub use gateway::{RunningGateway, start};
pub use state::Store;
pub use virtuals::VirtualTally;
