//! The ports of the wspush hexagon and the use-case services that drive them.
//!
//! What belongs here: the traits the core needs from the outside world, named by role
//! ([`ConnectionStore`], [`ConnectionGateway`], [`NotificationPublisher`], [`RequestLedger`],
//! [`HistoryStore`], [`Clock`], [`PushObserver`],
//! [`RemoteDocument`]), each method's contract in MUST wording, what a push did
//! ([`PushReport`], plain data in [`report`]), and the services written against those traits
//! only: connections (connect, disconnect, reading every live connection, pruning the gone
//! ones), subscriptions, and the push engine (`services/push/`, one room per concern).
//!
//! What must not: any AWS SDK or Lambda event type, or any knowledge of which adapter sits
//! behind a trait. Adapters live in `wspush-adapters`; edges in `lambdas/`.
//!
//! With the `mocks` feature (and in this crate's own tests) every port also has a mockall
//! mock: `MockConnectionStore`, `MockConnectionGateway`, `MockNotificationPublisher`,
//! `MockRequestLedger`, `MockClock`.

mod causes;
pub mod clock;
pub mod gateway;
pub mod history;
pub mod ledger;
pub mod observer;
pub mod presence;
pub mod publisher;
pub mod remote;
pub mod report;
pub mod services;
pub mod store;

pub use causes::with_causes;
pub use clock::Clock;
pub use gateway::{ConnectionGateway, ConnectionInfo, GatewayError};
pub use history::{Appended, HistoryRead, HistoryStore, Recorded};
pub use ledger::{Claim, RequestLedger};
pub use observer::PushObserver;
pub use presence::{PresenceStore, Transition};
pub use publisher::{MessageId, NotificationPublisher, PublishError};
pub use remote::{RemoteDocument, RemoteError, RemoteProblem};
pub use report::{FailedDelivery, FailureReason, PushReport, Stop};
pub use services::connections::{ConnectionService, PruneError, PruneReport, ServiceError};
pub use services::control::{ControlFailure, ControlReport, ControlService};
pub use services::presence::{Members, Occupancy, Presence, occupancy};
pub use services::push::{
    ContinuationConfig, Delivery, DeliveryContext, DeliveryFailure, EnqueueFailure, LedgerConfig,
    PushConfig, PushConfigError, PushService, ScatterConfig, Shortfall,
};
pub use services::resume::{INDEX_WAIT, Resumed};
pub use services::subscriptions::{SubscribeError, SubscriptionService};
pub use store::{ConnectionStore, Cursor, Deletion, Page, StoreError, stream_source};

#[cfg(any(test, feature = "mocks"))]
pub use clock::MockClock;
#[cfg(any(test, feature = "mocks"))]
pub use gateway::MockConnectionGateway;
#[cfg(any(test, feature = "mocks"))]
pub use ledger::MockRequestLedger;
#[cfg(any(test, feature = "mocks"))]
pub use publisher::MockNotificationPublisher;
#[cfg(any(test, feature = "mocks"))]
pub use remote::MockRemoteDocument;
#[cfg(any(test, feature = "mocks"))]
pub use store::MockConnectionStore;

/// A boxed error kept as the cause of a port error.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;
