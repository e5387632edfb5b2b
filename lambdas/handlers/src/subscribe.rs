//! The `subscribe` and `unsubscribe` routes.
//!
//! Body: `{"action": "subscribe", "topics": ["room:42"]}` (or `"unsubscribe"`). The reply,
//! sent back to the caller through the route response, is JSON:
//! `{"ok": true, "action": "subscribe", "topics": [...every topic now held...]}` or
//! `{"ok": false, "action": ..., "error": "..."}`.
//!
//! A subscribe may resume: `"since": {"room:42": {"seq": 17, "epoch": "..."}}`. What the
//! connection missed is posted to it first (in order, each as the pushes' envelope), and the
//! reply adds `"recovered": {"room:42": 3}` and `"gaps": [...]` (streams the history no
//! longer reaches back to: reload them).
//!
//! `{"action": "presence", "topic": "room:42", "limit": 100}` asks who is in a topic that keeps
//! presence, from a connection subscribed to it: `{"ok": true, "action": "presence", "topic":
//! "room:42", "users": ["ana", "bo"], "total": 2}` (at most `limit` users, default 100, at most
//! 1,000; `total` counts them all). Anyone else gets a 403 naming the rule.
//!
//! A message may carry an `"id"` (1 to 64 visible ASCII characters), which its reply echoes:
//! API Gateway runs a socket's messages concurrently, so replies can come in any order. A bad body or a denied topic never crashes
//! the function: it gets an error reply naming the problem.

use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use serde::Deserialize;
use serde_json::json;
use wspush_domain::presence::{DEFAULT_PRESENCE_LIMIT, MAX_PRESENCE_LIMIT};
use wspush_domain::{ConnectionId, ExternalId, IdError, Since, SinceError};
use wspush_ports::{ConnectionStore, Members, Resumed, SubscribeError, SubscriptionService};

use crate::response::{connection_id, response};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PresenceBody {
    #[serde(rename = "action")]
    _action: String,
    topic: String,
    #[serde(default)]
    limit: Option<serde_json::Value>,
    #[serde(default)]
    id: Option<String>,
}

/// Only the action, to choose the shape the rest must have.
#[derive(Debug, Deserialize)]
struct ActionProbe {
    action: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteBody {
    action: String,
    topics: Vec<String>,
    #[serde(default)]
    since: Option<serde_json::Value>,
    #[serde(default)]
    id: Option<String>,
}

/// The most bytes of user IDs a presence reply lists: the reply stays below API Gateway's
/// 128 KB message limit whatever the IDs' lengths.
pub const MAX_PRESENCE_REPLY_BYTES: usize = 100 * 1024;

/// The longest `id` a route message may carry, echoed in its reply.
pub const MAX_MESSAGE_ID_CHARS: usize = 64;

/// What a route message asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteAction {
    /// `"subscribe"`.
    Subscribe,
    /// `"unsubscribe"`.
    Unsubscribe,
    /// `"presence"`: who is in the one topic.
    Presence,
}

impl RouteAction {
    /// The action's name in the message.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteAction::Subscribe => "subscribe",
            RouteAction::Unsubscribe => "unsubscribe",
            RouteAction::Presence => "presence",
        }
    }
}

/// A valid route message: an action and at least one valid topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRequest {
    /// What to do.
    pub action: RouteAction,
    /// The topics, in the order given (a presence query's one topic).
    pub topics: Vec<ExternalId>,
    /// How many users a presence query lists at most (`None` for the other actions).
    pub limit: Option<usize>,
    /// Where a subscribe resumes each stream from (empty when it does not).
    pub since: Since,
    /// The sender's ID for the message, echoed in the reply (so that a client can tell
    /// which of its messages a reply answers: API Gateway runs them concurrently).
    pub id: Option<String>,
}

/// Why a route message was refused (a 400 reply).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem}")]
pub struct RouteBodyError {
    /// The action, when the message named one.
    pub action: Option<String>,
    /// The message's `id`, when it had a valid one.
    pub id: Option<String>,
    /// What is wrong.
    pub problem: RouteBodyProblem,
}

/// What is wrong with a route message; its text is the reply's `error`, for the sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteBodyProblem {
    /// The message had no body.
    #[error("the message has no body; send {{\"action\":\"subscribe\",\"topics\":[...]}}")]
    NoBody,
    /// The body is not a JSON object.
    #[error(
        "invalid message: expected a JSON object such as {{\"action\":\"subscribe\",\"topics\":[...]}}"
    )]
    NotAnObject,
    /// The object does not read as a route message (JSON syntax, a wrong type, an unknown,
    /// missing or repeated field), as the JSON reader put it.
    #[error("invalid message: {0}")]
    Invalid(String),
    /// The action is not one of the routes'.
    #[error("unknown action `{0}`; expected subscribe, unsubscribe or presence")]
    UnknownAction(String),
    /// A presence query's `limit` is not an integer in range.
    #[error("field `limit` must be an integer from 1 to {max}")]
    Limit {
        /// The largest limit.
        max: usize,
    },
    /// `topics` was empty.
    #[error("field `topics` must name at least one topic")]
    NoTopics,
    /// `since` is not a set of positions of the message's topics.
    #[error("{0}")]
    Since(SinceError),
    /// `id` is not 1 to 64 visible ASCII characters.
    #[error("field `id` must be 1 to 64 visible ASCII characters")]
    Id,
    /// `since` on an unsubscribe.
    #[error("field `since` applies to subscribe only")]
    SinceOnUnsubscribe,
    /// A topic is not a valid external ID.
    #[error("field `topics[{index}]`: {error}")]
    Topic {
        /// Its place in `topics`.
        index: usize,
        /// What is wrong with it.
        error: IdError,
    },
}

impl RouteBodyError {
    fn new(action: Option<&str>, problem: RouteBodyProblem) -> Self {
        Self {
            action: action.map(str::to_owned),
            id: None,
            problem,
        }
    }

    fn with_id(mut self, id: Option<&str>) -> Self {
        self.id = id.map(str::to_owned);
        self
    }
}

/// Parses a route message's body: `{"action": "subscribe" | "unsubscribe", "topics": [...]}`.
/// Unknown or repeated fields, wrong types, an empty topic list and invalid topics are
/// refused, each with a message naming the problem.
pub fn parse_route_body(text: Option<&str>) -> Result<RouteRequest, RouteBodyError> {
    let Some(text) = text else {
        return Err(RouteBodyError::new(None, RouteBodyProblem::NoBody));
    };
    // serde would also read a struct from an array (`["subscribe", ["t"]]`); only the
    // documented object form is accepted.
    if !text.trim_start().starts_with('{') {
        return Err(RouteBodyError::new(None, RouteBodyProblem::NotAnObject));
    }
    if serde_json::from_str::<ActionProbe>(text)
        .is_ok_and(|probe| probe.action.as_deref() == Some("presence"))
    {
        return parse_presence_body(text);
    }
    let body: RouteBody = serde_json::from_str(text)
        .map_err(|error| RouteBodyError::new(None, RouteBodyProblem::Invalid(error.to_string())))?;
    check_id(body.id.as_deref(), body.action.as_str())?;
    let id = body.id.clone();
    parse_fields(body).map_err(|error| error.with_id(id.as_deref()))
}

/// `{"action": "presence", "topic": ..., "limit": ...}`.
fn parse_presence_body(text: &str) -> Result<RouteRequest, RouteBodyError> {
    let name = Some(RouteAction::Presence.as_str());
    let body: PresenceBody = serde_json::from_str(text)
        .map_err(|error| RouteBodyError::new(name, RouteBodyProblem::Invalid(error.to_string())))?;
    check_id(body.id.as_deref(), RouteAction::Presence.as_str())?;
    let fail = |problem| RouteBodyError::new(name, problem).with_id(body.id.as_deref());
    let topic = ExternalId::parse(body.topic.clone())
        .map_err(|error| fail(RouteBodyProblem::Topic { index: 0, error }))?;
    let limit = match &body.limit {
        None | Some(serde_json::Value::Null) => DEFAULT_PRESENCE_LIMIT,
        Some(value) => value
            .as_u64()
            .and_then(|limit| usize::try_from(limit).ok())
            .filter(|limit| (1..=MAX_PRESENCE_LIMIT).contains(limit))
            .ok_or_else(|| {
                fail(RouteBodyProblem::Limit {
                    max: MAX_PRESENCE_LIMIT,
                })
            })?,
    };
    Ok(RouteRequest {
        action: RouteAction::Presence,
        topics: vec![topic],
        limit: Some(limit),
        since: Since::default(),
        id: body.id,
    })
}

/// Refuses an `id` that is not 1 to 64 visible ASCII characters.
fn check_id(id: Option<&str>, action: &str) -> Result<(), RouteBodyError> {
    if let Some(id) = id
        && (id.is_empty()
            || id.chars().count() > MAX_MESSAGE_ID_CHARS
            || !id.chars().all(|c| c.is_ascii_graphic()))
    {
        return Err(RouteBodyError::new(Some(action), RouteBodyProblem::Id));
    }
    Ok(())
}

/// The fields after `id`.
fn parse_fields(body: RouteBody) -> Result<RouteRequest, RouteBodyError> {
    let action = match body.action.as_str() {
        "subscribe" => RouteAction::Subscribe,
        "unsubscribe" => RouteAction::Unsubscribe,
        other => {
            return Err(RouteBodyError::new(
                Some(other),
                RouteBodyProblem::UnknownAction(other.to_owned()),
            ));
        }
    };
    let name = Some(action.as_str());
    if body.topics.is_empty() {
        return Err(RouteBodyError::new(name, RouteBodyProblem::NoTopics));
    }
    let topics = body
        .topics
        .into_iter()
        .enumerate()
        .map(|(index, topic)| {
            ExternalId::parse(topic).map_err(|error| {
                RouteBodyError::new(name, RouteBodyProblem::Topic { index, error })
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let since = match (action, body.since) {
        (_, None | Some(serde_json::Value::Null)) => Since::default(),
        (RouteAction::Unsubscribe, Some(_)) => {
            return Err(RouteBodyError::new(
                name,
                RouteBodyProblem::SinceOnUnsubscribe,
            ));
        }
        (_, Some(value)) => Since::parse(&value, &topics)
            .map_err(|error| RouteBodyError::new(name, RouteBodyProblem::Since(error)))?,
    };
    Ok(RouteRequest {
        action,
        topics,
        limit: None,
        since,
        id: body.id,
    })
}

fn reply(
    status: i64,
    action: Option<&str>,
    id: Option<&str>,
    error: impl std::fmt::Display,
) -> ApiGatewayProxyResponse {
    refusal_body(status, action, id, error, None)
}

/// `{"ok": false, "action": ..., "error": ..., "rule": ..., "id": ...}`.
fn refusal_body(
    status: i64,
    action: Option<&str>,
    id: Option<&str>,
    error: impl std::fmt::Display,
    rule: Option<&str>,
) -> ApiGatewayProxyResponse {
    let mut body = json!({"ok": false, "action": action, "error": error.to_string()});
    if let Some(rule) = rule {
        body["rule"] = rule.into();
    }
    if let Some(id) = id {
        body["id"] = id.into();
    }
    response(status, body.to_string())
}

/// Handles a `subscribe` or `unsubscribe` message.
pub async fn handle_route<S>(
    event: &ApiGatewayWebsocketProxyRequest,
    service: &SubscriptionService<S>,
) -> ApiGatewayProxyResponse
where
    S: ConnectionStore + ?Sized,
{
    let connection = match connection_id(event.request_context.connection_id.as_deref()) {
        Ok(connection) => connection,
        Err(refusal) => return *refusal,
    };
    let RouteRequest {
        action,
        topics,
        limit,
        since,
        id,
    } = match parse_route_body(event.body.as_deref()) {
        Ok(request) => request,
        Err(error) => {
            // The error can quote the body; only its size is logged at the default level.
            let bytes = event.body.as_deref().map_or(0, str::len);
            tracing::info!(%connection, bytes, "invalid route body");
            tracing::debug!(%connection, error = %error.problem, "invalid route body");
            return reply(
                400,
                error.action.as_deref(),
                error.id.as_deref(),
                error.problem,
            );
        }
    };
    let result = match action {
        RouteAction::Subscribe => service.subscribe_since(&connection, &topics, &since).await,
        RouteAction::Unsubscribe => service
            .unsubscribe(&connection, &topics)
            .await
            .map(|()| (topics, None)),
        RouteAction::Presence => {
            let topic = &topics[0];
            let limit = limit.unwrap_or(DEFAULT_PRESENCE_LIMIT);
            return match service.presence(&connection, topic, limit).await {
                Ok(Members { users, total }) => {
                    // User IDs may be 256 bytes: a reply must stay a message API Gateway
                    // delivers (128 KB), so the list stops short of it, and says so.
                    let mut listed: Vec<&str> = Vec::with_capacity(users.len());
                    let mut bytes = 0;
                    for user in &users {
                        bytes += user.as_str().len() + 3;
                        if bytes > MAX_PRESENCE_REPLY_BYTES {
                            break;
                        }
                        listed.push(user.as_str());
                    }
                    let truncated = listed.len() < users.len();
                    let mut body = json!({
                        "ok": true,
                        "action": action.as_str(),
                        "topic": topic.as_str(),
                        "users": listed,
                        "total": total,
                    });
                    if truncated {
                        body["truncated"] = true.into();
                    }
                    if let Some(id) = &id {
                        body["id"] = id.as_str().into();
                    }
                    response(200, body.to_string())
                }
                Err(error) => refusal(&connection, action, id.as_deref(), error),
            };
        }
    };
    match result {
        Ok((topics, resumed)) => {
            let names: Vec<&str> = topics.iter().map(ExternalId::as_str).collect();
            let mut body = json!({"ok": true, "action": action.as_str(), "topics": names});
            if let Some(Resumed { recovered, gaps }) = resumed {
                let recovered: serde_json::Map<String, serde_json::Value> = recovered
                    .into_iter()
                    .map(|(stream, count)| (stream.to_string(), count.into()))
                    .collect();
                let gaps: Vec<&str> = gaps.iter().map(ExternalId::as_str).collect();
                body["recovered"] = recovered.into();
                body["gaps"] = gaps.into();
            }
            if let Some(id) = &id {
                body["id"] = id.as_str().into();
            }
            response(200, body.to_string())
        }
        Err(error) => refusal(&connection, action, id.as_deref(), error),
    }
}

/// The reply to a request the service refused or failed.
fn refusal(
    connection: &ConnectionId,
    action: RouteAction,
    id: Option<&str>,
    error: SubscribeError,
) -> ApiGatewayProxyResponse {
    match error {
        SubscribeError::Denied(denial) => {
            // The reply names the topic; the log names only the rule (topics can name users).
            tracing::info!(%connection, rule = denial.rule(), "subscription denied");
            // The rule's short name too, for a client to act on.
            refusal_body(403, Some(action.as_str()), id, &denial, Some(denial.rule()))
        }
        error @ SubscribeError::NotConnected(_) => reply(410, Some(action.as_str()), id, error),
        error @ SubscribeError::NoPresence(_) => reply(400, Some(action.as_str()), id, error),
        SubscribeError::Store(error) => {
            tracing::error!(%connection, error = %anyhow::Error::new(error), "the store failed");
            reply(500, Some(action.as_str()), id, "internal error; try again")
        }
    }
}
