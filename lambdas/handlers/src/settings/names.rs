//! The names of the environment variables the functions read: spelled here once. The
//! template (`deploy/template.yaml`) sets them; the CLI and the local gateway take the same
//! names for the same things.

/// The DynamoDB table.
pub const TABLE: &str = "WSPUSH_TABLE";
/// The key of the authorizer context that holds the user's ID (default `principalId`).
pub const IDENTITY_KEY: &str = "WSPUSH_IDENTITY_KEY";
/// The key of the authorizer context that lists the topics the user may subscribe to (a
/// JSON array or a comma-separated list); unset to leave topics to the subscription policy.
pub const AUTHORIZER_GRANTS_KEY: &str = "WSPUSH_AUTHORIZER_GRANTS_KEY";
/// Comma-separated subprotocols `$connect` may answer with; unset for whichever the client
/// offered first.
pub const SUBPROTOCOLS: &str = "WSPUSH_SUBPROTOCOLS";
/// INSECURE, for development only: the query-string parameter a client may name its user
/// in when the authorizer gives none. Unset in any deployment.
pub const INSECURE_IDENTITY_PARAM: &str = "WSPUSH_INSECURE_DEV_IDENTITY_PARAM";
/// The HS256 secret `$connect` verifies tokens with (at least 32 bytes); set this or
/// [`JWT_JWKS`] to require a token.
pub const JWT_HS256_SECRET: &str = "WSPUSH_JWT_HS256_SECRET";
/// The ARN of a Secrets Manager secret or an SSM `SecureString` parameter that holds the
/// HS256 secret, read at cold start (instead of [`JWT_HS256_SECRET`] in the environment).
pub const JWT_HS256_SECRET_ARN: &str = "WSPUSH_JWT_HS256_SECRET_ARN";
/// A JWKS document (JSON) of the RS256 / ES256 public keys `$connect` verifies tokens with.
pub const JWT_JWKS: &str = "WSPUSH_JWT_JWKS";
/// The URL of the identity provider's JWKS (`https://`), read at cold start and again when a
/// token names an unknown key or the keys are older than [`JWT_JWKS_TTL_SECONDS`].
pub const JWT_JWKS_URL: &str = "WSPUSH_JWT_JWKS_URL";
/// Seconds a JWKS read from its URL is kept before it is read again (default 3,600).
pub const JWT_JWKS_TTL_SECONDS: &str = "WSPUSH_JWT_JWKS_TTL_SECONDS";
/// The fewest seconds between two reads of a JWKS URL (default 30): an unknown `kid` never
/// makes the identity provider answer more often.
pub const JWT_JWKS_MIN_REFETCH_SECONDS: &str = "WSPUSH_JWT_JWKS_MIN_REFETCH_SECONDS";
/// The issuer (`iss`) tokens must have; required with a secret or JWKS.
pub const JWT_ISSUER: &str = "WSPUSH_JWT_ISSUER";
/// The audience tokens' `aud` must include; required with a secret or JWKS.
pub const JWT_AUDIENCE: &str = "WSPUSH_JWT_AUDIENCE";
/// The claim listing the topics a token grants (default `topics`; `off` to leave topics to
/// the subscription policy alone).
pub const JWT_TOPICS_CLAIM: &str = "WSPUSH_JWT_TOPICS_CLAIM";
/// Seconds of clock skew allowed on `exp` and `nbf` (default 30, at most 300).
pub const JWT_LEEWAY_SECONDS: &str = "WSPUSH_JWT_LEEWAY_SECONDS";
/// The longest a token may be valid for, in seconds (default 86,400: 24 hours).
pub const JWT_MAX_LIFETIME_SECONDS: &str = "WSPUSH_JWT_MAX_LIFETIME_SECONDS";
/// Comma-separated topic namespaces connections may subscribe to; unset or empty for any.
pub const ALLOWED_NAMESPACES: &str = "WSPUSH_ALLOWED_NAMESPACES";
/// The most subscriptions one connection may hold (default 100).
pub const MAX_SUBSCRIPTIONS: &str = "WSPUSH_MAX_SUBSCRIPTIONS_PER_CONNECTION";
/// The most topics one subscribe message may name (default 20).
pub const MAX_TOPICS_PER_MESSAGE: &str = "WSPUSH_MAX_TOPICS_PER_MESSAGE";
/// Comma-separated topic namespaces whose streams keep history (`room,user`; `user` for
/// users' own channels `user:<id>`); unset or empty for none.
pub const HISTORY_NAMESPACES: &str = "WSPUSH_HISTORY_NAMESPACES";
/// Seconds a stream's messages are kept (default 900).
pub const HISTORY_TTL_SECONDS: &str = "WSPUSH_HISTORY_TTL_SECONDS";
/// The most messages a stream keeps (default 100).
pub const HISTORY_SIZE: &str = "WSPUSH_HISTORY_SIZE";
/// Comma-separated topic namespaces that keep presence (joins, leaves and the presence
/// query); unset or empty for none. With it set, the subscribe and disconnect functions
/// enqueue the events to [`QUEUE_URL`], which they then require.
pub const PRESENCE_NAMESPACES: &str = "WSPUSH_PRESENCE_NAMESPACES";
/// The most posts in flight per push (default 256).
pub const MAX_IN_FLIGHT: &str = "WSPUSH_MAX_IN_FLIGHT";
/// Connections per store page (default 500).
pub const PAGE_SIZE: &str = "WSPUSH_PAGE_SIZE";
/// Segments a broadcast is read in (default 4).
pub const BROADCAST_SEGMENTS: &str = "WSPUSH_BROADCAST_SEGMENTS";

/// `true` to read a notification request whose `users`, `topics` and `connections` are
/// given but all empty (or `null`) as a broadcast, as the Python pusher did (default
/// `false`: it reaches nobody).
pub const EMPTY_LISTS_MEAN_EVERYONE: &str = "WSPUSH_EMPTY_LISTS_MEAN_EVERYONE";
/// The most posts per second of one pusher instance (default 8,000; `off` for no ceiling).
pub const MAX_POSTS_PER_SECOND: &str = "WSPUSH_MAX_POSTS_PER_SECOND";
/// The CloudWatch namespace of the pusher's metrics (default `wspush`; `off` writes none).
pub const METRICS_NAMESPACE: &str = "WSPUSH_METRICS_NAMESPACE";

/// The SQS queue URL the pusher enqueues continuations to (the notification queue); unset
/// for none: a push that cannot finish is then reported failed whole.
pub const QUEUE_URL: &str = "WSPUSH_QUEUE_URL";
/// How many times connections that still fail after their retries are re-enqueued
/// (default 3; 0 reports the request failed at once).
pub const MAX_GENERATIONS: &str = "WSPUSH_MAX_GENERATIONS";
/// Milliseconds before the Lambda deadline at which a push stops starting posts and hands
/// the rest on (default 10,000).
pub const DEADLINE_MARGIN_MS: &str = "WSPUSH_DEADLINE_MARGIN_MS";
/// A broadcast is scattered once it has read more than this many connections (default
/// 10,000; `off` never scatters).
pub const SCATTER_ABOVE: &str = "WSPUSH_SCATTER_ABOVE";
/// The segments a scattered broadcast is split into (default 16).
pub const SCATTER_SEGMENTS: &str = "WSPUSH_SCATTER_SEGMENTS";
/// Seconds a completed request is remembered to skip its redeliveries (default 86,400;
/// `off` for no ledger).
pub const IDEMPOTENCY_TTL_SECONDS: &str = "WSPUSH_IDEMPOTENCY_TTL_SECONDS";
/// How `@connections` is called: `lean` (hyper and `aws-sigv4`, the default) or `sdk` (the
/// AWS SDK's client).
pub const TRANSPORT: &str = "WSPUSH_TRANSPORT";
/// The `@connections` management endpoint (wins over [`WEBSOCKET_URL`]).
pub const MANAGEMENT_ENDPOINT: &str = "WSPUSH_MANAGEMENT_ENDPOINT";
/// The API's `wss://` stage URL, from which the management endpoint follows.
pub const WEBSOCKET_URL: &str = "WSPUSH_WEBSOCKET_URL";
/// The function's name, set by Lambda: the metrics' `Function` dimension.
pub const FUNCTION_NAME: &str = "AWS_LAMBDA_FUNCTION_NAME";

/// The SNS topic the CLI publishes to (`wspush notify --via sns`).
pub const TOPIC_ARN: &str = "WSPUSH_TOPIC_ARN";
/// The local gateway the CLI talks to (`wspush notify --via local`).
pub const LOCAL_URL: &str = "WSPUSH_LOCAL_URL";
/// The local gateway's listening host.
pub const LOCAL_HOST: &str = "WSPUSH_LOCAL_HOST";
/// The local gateway's listening port.
pub const LOCAL_PORT: &str = "WSPUSH_LOCAL_PORT";

/// Every variable a function reads (besides [`FUNCTION_NAME`], which Lambda sets): a
/// `WSPUSH_` variable the template sets that is not here is read by nothing (a typo, or a
/// name changed on one side only), and the local gateway refuses it by name.
pub const FUNCTION_VARIABLES: &[&str] = &[
    TABLE,
    IDENTITY_KEY,
    AUTHORIZER_GRANTS_KEY,
    SUBPROTOCOLS,
    INSECURE_IDENTITY_PARAM,
    JWT_HS256_SECRET,
    JWT_HS256_SECRET_ARN,
    JWT_JWKS,
    JWT_JWKS_URL,
    JWT_JWKS_TTL_SECONDS,
    JWT_JWKS_MIN_REFETCH_SECONDS,
    JWT_ISSUER,
    JWT_AUDIENCE,
    JWT_TOPICS_CLAIM,
    JWT_LEEWAY_SECONDS,
    JWT_MAX_LIFETIME_SECONDS,
    ALLOWED_NAMESPACES,
    MAX_SUBSCRIPTIONS,
    MAX_TOPICS_PER_MESSAGE,
    HISTORY_NAMESPACES,
    HISTORY_TTL_SECONDS,
    HISTORY_SIZE,
    PRESENCE_NAMESPACES,
    MAX_IN_FLIGHT,
    PAGE_SIZE,
    BROADCAST_SEGMENTS,
    EMPTY_LISTS_MEAN_EVERYONE,
    MAX_POSTS_PER_SECOND,
    METRICS_NAMESPACE,
    QUEUE_URL,
    MAX_GENERATIONS,
    DEADLINE_MARGIN_MS,
    SCATTER_ABOVE,
    SCATTER_SEGMENTS,
    IDEMPOTENCY_TTL_SECONDS,
    TRANSPORT,
    MANAGEMENT_ENDPOINT,
    WEBSOCKET_URL,
];

/// The variables of the CLI and the local gateway only.
pub const TOOL_VARIABLES: &[&str] = &[TOPIC_ARN, LOCAL_URL, LOCAL_HOST, LOCAL_PORT];

#[cfg(test)]
mod tests {
    use super::{FUNCTION_NAME, FUNCTION_VARIABLES, TOOL_VARIABLES};

    #[test]
    fn every_name_is_listed_once() {
        let declared: Vec<&str> = include_str!("names.rs")
            .lines()
            .filter_map(|line| line.strip_prefix("pub const "))
            .filter_map(|rest| rest.split_once(": &str = \""))
            .map(|(_, value)| value.trim_end_matches("\";"))
            .collect();
        let mut listed: Vec<&str> = FUNCTION_VARIABLES
            .iter()
            .chain(TOOL_VARIABLES)
            .chain([&FUNCTION_NAME])
            .copied()
            .collect();
        listed.sort_unstable();
        let mut sorted = declared.clone();
        sorted.sort_unstable();
        assert_eq!(listed, sorted, "each name in exactly one list");
    }
}
