//! Platform limits, each named once with the fact it comes from.

use std::time::Duration;

/// API Gateway WebSocket APIs refuse a message (and a `PostToConnection` body) over 128 KB.
pub const MAX_PAYLOAD_BYTES: usize = 128 * 1024;

/// API Gateway closes every WebSocket connection after 2 hours, whatever it is doing.
pub const MAX_CONNECTION_DURATION: Duration = Duration::from_secs(2 * 60 * 60);

/// API Gateway closes a WebSocket connection that has been idle for 10 minutes.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// The account-wide API Gateway throttle (steady rate), which `@connections` calls share.
pub const ACCOUNT_REQUESTS_PER_SECOND: u32 = 10_000;

/// The account-wide API Gateway burst allowance.
pub const ACCOUNT_BURST: u32 = 5_000;

/// DynamoDB stops a `Query` or `Scan` page at 1 MB of data read.
pub const DYNAMODB_PAGE_BYTES: usize = 1024 * 1024;

/// DynamoDB's `IN` comparator takes at most 100 values, so exclusions are never pushed into
/// a filter expression.
pub const DYNAMODB_MAX_IN_VALUES: usize = 100;

/// `SendMessageBatch` and `PublishBatch` take at most 10 entries.
pub const SQS_BATCH_MAX_ENTRIES: usize = 10;

/// The default number of `PostToConnection` calls one push keeps in flight.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

/// The default ceiling on `PostToConnection` calls per second of one pusher instance, all its
/// pushes together: below API Gateway's default account throttle of 10,000 requests per
/// second, which every API and every caller in the account and region share.
pub const DEFAULT_MAX_POSTS_PER_SECOND: u32 = 8_000;

/// Connection IDs are short base64 strings in API Gateway (16 characters); 128 bytes leaves
/// room for other transports without letting a hostile ID grow a key without bound.
pub const MAX_CONNECTION_ID_BYTES: usize = 128;

/// User IDs: UUIDs, Cognito `sub`s, e-mail addresses and `provider|id` forms all fit.
pub const MAX_USER_ID_BYTES: usize = 256;

/// External IDs (topics) may embed a user ID (`user:<id>`), so they get twice its room.
/// DynamoDB's 1,024-byte sort-key limit stays far away.
pub const MAX_EXTERNAL_ID_BYTES: usize = 512;

/// Request IDs: SQS and SNS message IDs are 36-character UUIDs; 128 bytes leaves room for a
/// producer's own keys.
pub const MAX_REQUEST_ID_BYTES: usize = 128;

/// SQS refuses a message over 256 KiB (262,144 bytes), so a continuation is split to fit.
pub const SQS_MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// The longest store cursor a notification request may carry. DynamoDB keys are at most
/// 2,048 (partition) + 1,024 (sort) bytes per key, and a cursor holds an index key and the
/// table key as JSON.
pub const MAX_CURSOR_BYTES: usize = 8 * 1024;

/// The highest `generation` a notification request may carry. The pusher's configured
/// bound (`WSPUSH_MAX_GENERATIONS`) is usually far lower; this only rejects nonsense.
pub const MAX_GENERATION: u32 = 100;

/// The most topic grants a token may carry. They are saved on the connection's item, which
/// DynamoDB caps at 400 KB: 256 grants of at most 512 bytes stay far below it.
pub const MAX_TOPIC_GRANTS: usize = 256;
