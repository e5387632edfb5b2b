//! The pure core of wspush: the types and rules that every other crate speaks.
//!
//! What belongs here: validated identifiers ([`ConnectionId`], [`UserId`], [`ExternalId`]),
//! the [`Connection`] model with its expiry, the [`NotificationRequest`] format and its
//! parser, audience targeting ([`Targeting`], [`Source`]) and broadcast [`Segment`]s,
//! continuations (what a stopped push leaves, as narrowed requests), the post-rate
//! [`Pacer`], the subscription and retry policies, API Gateway's URL rule ([`endpoint`]), and
//! the platform [`limits`] these rules come from.
//!
//! What must not: async code, I/O, clocks, randomness or any AWS type. Time and randomness
//! come in as arguments, so every rule here is a plain function that a unit test can pin down.

pub mod audience;
pub mod builder;
pub mod connection;
pub mod continuation;
pub mod control;
pub mod endpoint;
pub mod grants;
pub mod history;
pub mod ids;
pub mod limits;
pub mod notification;
pub mod pacing;
pub mod policy;
pub mod presence;
pub mod retry;
pub mod segment;
pub mod time;

pub use audience::{Admission, Source, Targeting};
pub use builder::{BuildError, RequestBuilder};
pub use connection::{Connection, Subscription};
pub use continuation::{
    ContinuationError, ContinuationLimits, Leftover, Resume, plan_continuations,
};
pub use control::{ControlAction, ControlError, ControlRequest, is_control_request};
pub use grants::{GrantError, TopicGrant, TopicGrants};
pub use history::{
    Epoch, HistoryPolicy, HistoryPolicyError, Position, Retention, Since, SinceError,
};
pub use ids::{ConnectionId, ExternalId, IdError, IdKind, RequestId, UserId};
pub use notification::{Narrowed, NotificationRequest, RequestError};
pub use pacing::Pacer;
pub use policy::{Denial, SubscriptionPolicy};
pub use presence::{PresenceChange, PresenceEvent, PresencePolicy, PresencePolicyError};
pub use retry::RetryPolicy;
pub use segment::{Segment, SegmentError};
pub use time::Timestamp;
