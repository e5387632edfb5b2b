//! `$connect`: who is this, and remember the connection.
//!
//! The user comes from one of, in this order of configuration:
//!
//! - **a token** ([`TokenVerifier`]), when configured: a JWT in the `token` query parameter
//!   or among the `Sec-WebSocket-Protocol` values (browsers can set no other header). Only the
//!   token counts then; the authorizer context is ignored.
//! - **the authorizer** (`requestContext.authorizer`), under [`IdentitySource::authorizer_key`];
//!   the topics it grants under [`IdentitySource::authorizer_grants_key`], when set.
//! - INSECURE, for development only: a query parameter that names the user.
//!
//! When the client offered subprotocols, the answer names the one chosen, as browsers and API
//! Gateway require: the first offered that is not a token (and is in
//! [`IdentitySource::subprotocols`], when that allow-list is set), or else the token itself
//! when one was offered.

use std::sync::Arc;

use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::http::HeaderValue;
use serde_json::Value;
use wspush_domain::{IdError, TopicGrants, UserId};
use wspush_ports::{ConnectionService, ConnectionStore};

use crate::response::{connection_id, response};
use crate::token::{TokenError, TokenVerifier};

/// The query parameter a token may come in.
pub const TOKEN_QUERY_PARAM: &str = "token";

/// The header browsers can set from JavaScript (`new WebSocket(url, protocols)`).
pub const PROTOCOL_HEADER: &str = "sec-websocket-protocol";

/// Where the user's identity comes from at `$connect`.
#[derive(Debug, Clone)]
pub struct IdentitySource {
    /// The key of `requestContext.authorizer` that holds the user ID (the authorizer's
    /// `principalId` by default, or a key of its context).
    pub authorizer_key: String,
    /// INSECURE, for development only: a query-string parameter that names the user when the
    /// authorizer gives no identity. Anyone can claim any user with it.
    pub insecure_query_param: Option<String>,
    /// When set, a valid token is the only identity accepted.
    pub token: Option<Arc<TokenVerifier>>,
    /// The key of `requestContext.authorizer` that lists the topics the user may subscribe
    /// to (a JSON array, or a comma-separated list, in a string: an authorizer's context holds
    /// strings, numbers and booleans only). When set, a context without it grants nothing
    /// but the user's own channel; `None` leaves topics to the subscription policy.
    pub authorizer_grants_key: Option<String>,
    /// The subprotocols `$connect` may answer with; `None` for whichever the client offered
    /// first.
    pub subprotocols: Option<Vec<String>>,
}

impl Default for IdentitySource {
    fn default() -> Self {
        Self {
            authorizer_key: "principalId".to_owned(),
            insecure_query_param: None,
            token: None,
            authorizer_grants_key: None,
            subprotocols: None,
        }
    }
}

/// Who opened a connection, and what their token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identified {
    /// The user.
    pub user: UserId,
    /// The topics the token grants; `None` when not limited by a token.
    pub grants: Option<TopicGrants>,
}

/// Why `$connect` refused a socket (a 401). Never holds a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Tokens are required and none was presented.
    #[error(
        "no token: send it in the `token` query parameter or as a Sec-WebSocket-Protocol value"
    )]
    NoToken,
    /// More than one token was presented.
    #[error("more than one token was presented")]
    SeveralTokens,
    /// The token failed verification.
    #[error("invalid token: {0}")]
    Token(#[from] TokenError),
    /// No authorizer identity (and no development query parameter).
    #[error("the event carries no identity under `{0}`")]
    NoIdentity(String),
    /// The identity is not a valid user ID.
    #[error("the identity is not a valid user ID: {0}")]
    InvalidUser(IdError),
    /// The authorizer's grants are not a list of valid grants.
    #[error("the authorizer's `{key}`: {reason}")]
    InvalidGrants {
        /// The context key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Whether a subprotocol value is a JWT: three dot-separated parts whose first decodes to
/// a JOSE header. (Shape alone is not enough: `wamp.2.json` is a registered subprotocol.)
fn looks_like_jwt(value: &str) -> bool {
    value.split('.').count() == 3 && jsonwebtoken::decode_header(value).is_ok()
}

/// What the client offered in `Sec-WebSocket-Protocol`, read once per `$connect`: the
/// protocol names and the tokens, each in order and without repeats.
struct Offered<'a> {
    protocols: Vec<&'a str>,
    tokens: Vec<&'a str>,
}

impl<'a> Offered<'a> {
    fn of(event: &'a ApiGatewayWebsocketProxyRequest) -> Self {
        let mut seen = std::collections::HashSet::new();
        // API Gateway sends each header in both maps.
        let values = event
            .multi_value_headers
            .get_all(PROTOCOL_HEADER)
            .iter()
            .chain(event.headers.get_all(PROTOCOL_HEADER).iter())
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|value| !value.is_empty() && seen.insert(*value));
        let (tokens, protocols) = values.partition(|value| looks_like_jwt(value));
        Self { protocols, tokens }
    }

    /// The subprotocol to answer with: the first offered that is not a token and is
    /// `allowed` (any, when there is no allow-list), else the token when tokens are in use,
    /// else none.
    fn chosen(&self, tokens_in_use: bool, allowed: Option<&[String]>) -> Option<String> {
        self.protocols
            .iter()
            .find(|protocol| allowed.is_none_or(|allowed| allowed.iter().any(|a| a == *protocol)))
            .or_else(|| self.tokens.first().filter(|_| tokens_in_use))
            .map(|value| (*value).to_owned())
    }

    /// The one token the client presented, from a subprotocol or the query string.
    fn token(&self, event: &'a ApiGatewayWebsocketProxyRequest) -> Result<&'a str, Refusal> {
        let mut tokens = self.tokens.clone();
        let query = event
            .multi_value_query_string_parameters
            .all(TOKEN_QUERY_PARAM)
            .or_else(|| event.query_string_parameters.all(TOKEN_QUERY_PARAM))
            .unwrap_or_default();
        tokens.extend(query);
        tokens.dedup();
        match tokens.as_slice() {
            [] => Err(Refusal::NoToken),
            [token] => Ok(token),
            _ => Err(Refusal::SeveralTokens),
        }
    }
}

/// The subprotocol `$connect` answers with: the first offered that is not a token and is
/// `allowed` (any, for `None`), else the token when `tokens` are in use, else none.
pub fn chosen_protocol(
    event: &ApiGatewayWebsocketProxyRequest,
    tokens: bool,
    allowed: Option<&[String]>,
) -> Option<String> {
    Offered::of(event).chosen(tokens, allowed)
}

impl IdentitySource {
    /// The user of a `$connect` event, or why the socket is refused.
    pub fn identify(&self, event: &ApiGatewayWebsocketProxyRequest) -> Result<Identified, Refusal> {
        self.identify_offered(event, &Offered::of(event))
    }

    fn identify_offered<'a>(
        &self,
        event: &'a ApiGatewayWebsocketProxyRequest,
        offered: &Offered<'a>,
    ) -> Result<Identified, Refusal> {
        if let Some(verifier) = &self.token {
            let verified = verifier.verify(offered.token(event)?)?;
            return Ok(Identified {
                user: verified.user,
                grants: verified.grants,
            });
        }
        let from_authorizer = event
            .request_context
            .authorizer
            .fields
            .get(&self.authorizer_key)
            .and_then(|value| match value {
                Value::String(text) => Some(text.clone()),
                Value::Number(number) => Some(number.to_string()),
                _ => None,
            });
        let from_query = || {
            self.insecure_query_param.as_ref().and_then(|param| {
                event
                    .query_string_parameters
                    .first(param)
                    .map(str::to_owned)
            })
        };
        let raw = from_authorizer
            .or_else(from_query)
            .ok_or_else(|| Refusal::NoIdentity(self.authorizer_key.clone()))?;
        let user = UserId::parse(raw).map_err(Refusal::InvalidUser)?;
        let grants = match &self.authorizer_grants_key {
            Some(key) => Some(authorizer_grants(
                key,
                event.request_context.authorizer.fields.get(key),
            )?),
            None => None,
        };
        Ok(Identified { user, grants })
    }
}

/// Handles `$connect`: 200 and the connection saved, or 401 (the socket is refused) when
/// the event carries no valid identity.
pub async fn handle_connect<S>(
    event: &ApiGatewayWebsocketProxyRequest,
    service: &ConnectionService<S>,
    identity: &IdentitySource,
) -> ApiGatewayProxyResponse
where
    S: ConnectionStore + ?Sized,
{
    let connection = match connection_id(event.request_context.connection_id.as_deref()) {
        Ok(connection) => connection,
        Err(refusal) => return *refusal,
    };
    let offered = Offered::of(event);
    if let Some(verifier) = &identity.token {
        verifier.refresh_if_stale().await;
    }
    let seen = identity
        .token
        .as_ref()
        .map_or(0, |verifier| verifier.keys_version());
    let mut identified = identity.identify_offered(event, &offered);
    // A key the provider added since the JWKS was read: read it again (rate-limited), or
    // take the keys another connect just read, then check once more.
    if let (Err(Refusal::Token(error)), Some(verifier)) = (&identified, &identity.token)
        && verifier.reread_after(error, seen).await
    {
        identified = identity.identify_offered(event, &offered);
    }
    let Identified { user, grants } = match identified {
        Ok(identified) => identified,
        Err(refusal) => {
            tracing::warn!(%connection, reason = %refusal, "refusing the connection");
            return response(401, "Unauthorized");
        }
    };
    match service.connect_with_grants(connection, user, grants).await {
        Ok(_) => {
            let mut answer = response(200, "Connected");
            if let Some(protocol) =
                offered.chosen(identity.token.is_some(), identity.subprotocols.as_deref())
                && let Ok(value) = HeaderValue::from_str(&protocol)
            {
                answer.headers.insert(PROTOCOL_HEADER, value);
            }
            answer
        }
        Err(error) => {
            tracing::error!(error = %anyhow::Error::new(error), "saving the connection failed");
            response(500, "Internal server error")
        }
    }
}

/// The grants under `key` of an authorizer's context: absent grants nothing; otherwise a
/// JSON array of strings, or a comma-separated list, in a string (a JSON array is taken too,
/// for authorizers of HTTP APIs' simple responses).
fn authorizer_grants(key: &str, value: Option<&Value>) -> Result<TopicGrants, Refusal> {
    let bad = |reason: String| Refusal::InvalidGrants {
        key: key.to_owned(),
        reason,
    };
    let strings: Vec<String> = match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) if text.trim_start().starts_with('[') => {
            serde_json::from_str(text)
                .map_err(|error| bad(format!("not a JSON array of strings: {error}")))?
        }
        Some(Value::String(text)) => text
            .split(',')
            .map(str::trim)
            .filter(|grant| !grant.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(index, grant)| {
                grant
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| bad(format!("grant {index} is not a string")))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad("must be a list of topics".to_owned())),
    };
    TopicGrants::parse(strings).map_err(|error| bad(error.to_string()))
}
