//! The Lambda handlers of wspush: plain async functions from an event to a response, over
//! the services of `wspush-ports`.
//!
//! What belongs here: turning Lambda events (`aws_lambda_events` types) into domain values
//! once, at the edge, calling a service, and turning its answer into the response Lambda
//! and API Gateway expect; and the typed settings each function reads at cold start
//! ([`settings`]: the one place the environment is read, and where every variable is named).
//! The Lambda mains (`lambdas/connect`, ...) and the local gateway call these same functions.
//!
//! What must not: SDK clients, `lambda_runtime`, or any rule the domain or a service owns.

pub mod connect;
pub mod disconnect;
pub mod pusher;
pub mod response;
pub mod settings;
pub mod subscribe;
pub mod token;

pub use connect::{Identified, IdentitySource, Refusal, handle_connect};
pub use disconnect::handle_disconnect;
pub use pusher::{
    Handled, PusherError, control_answer, deliver_text, delivery_answer, handle_invocation,
    handle_sns, handle_sqs,
};
pub use settings::SettingsError;
pub use subscribe::handle_route;
pub use token::JwksRefresh;
