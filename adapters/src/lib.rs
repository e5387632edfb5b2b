//! Adapters: the technologies behind wspush's ports.
//!
//! What belongs here: one module per technology, each implementing a port from
//! `wspush-ports` and translating its technology's errors into the port's error types at the
//! seam, keeping the cause. Today:
//!
//! | port | adapters |
//! |---|---|
//! | `ConnectionStore`, `RequestLedger` | [`DynamoDbStore`] (the production store, [`dynamodb`]), [`MemoryStore`] (a real, thread-safe store with expiry, the local gateway's default) |
//! | `ConnectionGateway` | [`ApiGatewayGateway`] (the API Gateway Management API, `@connections`, on the lean transport or the SDK: [`Transport`]) |
//! | `NotificationPublisher` | [`SqsPublisher`], [`SnsPublisher`] (with [`publish`], what they share) |
//! | `PushObserver` | [`EmfMetrics`] (CloudWatch Embedded Metric Format lines) |
//! | `Clock` | [`SystemClock`], [`ManualClock`] |
//! | `RemoteDocument` | [`HttpDocument`] (an identity provider's JWKS over HTTPS), [`AwsSecret`] (a Secrets Manager secret or an SSM parameter) |
//!
//! [`aws`] builds the one HTTPS client every AWS SDK client shares.
//!
//! What must not: business rules (targeting, policies, retries live in `domain` and in the
//! services of `ports`), or reading the environment (each function's settings are read in
//! `wspush-handlers`' `settings`, and come here as constructor arguments).

pub mod apigateway;
pub mod aws;
pub mod clock;
pub mod dynamodb;
pub mod emf;
pub mod http_document;
pub mod memory;
pub mod publish;
pub mod secrets;
pub mod sns;
pub mod sqs;

pub use apigateway::{ApiGatewayConfig, ApiGatewayGateway, Transport};
pub use clock::{ManualClock, SystemClock};
pub use dynamodb::DynamoDbStore;
pub use emf::EmfMetrics;
pub use http_document::HttpDocument;
pub use memory::MemoryStore;
pub use secrets::AwsSecret;
pub use sns::SnsPublisher;
pub use sqs::SqsPublisher;
