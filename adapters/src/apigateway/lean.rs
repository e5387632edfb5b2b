//! The lean transport: `@connections` calls over one hyper 1 HTTP/1.1 keep-alive pool
//! (rustls, ring provider, the system's root certificates), each signed with `aws-sigv4`
//! for `execute-api`, as the SDK signs them (double-encoded path, `x-amz-date`, the session
//! token in the canonical request).
//!
//! Per post: the path (one string), the signature (the canonical request and two HMAC
//! chains, inside `aws-sigv4`), the request and its headers. The payload is sent as the
//! `Bytes` it came in (no copy), credentials come from a cache, and nothing goes through a
//! generic orchestrator or a type-erased config bag. An answer's body is read only up to
//! [`MAX_ERROR_BODY_BYTES`] (error codes live there when no `x-amzn-ErrorType` header is
//! sent), which also leaves the connection ready for reuse.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_apigatewaymanagement::primitives::{DateTime, DateTimeFormat};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::Deserialize;
use wspush_domain::{ConnectionId, Timestamp};
use wspush_ports::{ConnectionGateway, ConnectionInfo, GatewayError};

use super::credentials::CredentialsCache;
use super::{ApiGatewayConfig, SetupError, Verdict, classify, gateway_error};

/// The most of an answer's body read (API Gateway's error bodies and `GetConnection`
/// answers are well under a kilobyte).
pub const MAX_ERROR_BODY_BYTES: usize = 16 * 1024;
/// How long an idle pooled connection is kept (API Gateway closes idle ones after about
/// a minute and a half, a Lambda instance may sleep between invocations for longer).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(50);
/// The service name in the signature's scope.
const SIGNING_NAME: &str = "execute-api";

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// A [`ConnectionGateway`] on API Gateway's Management API over hyper and `aws-sigv4`.
#[derive(Clone)]
pub struct LeanGateway {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client<Https, Full<Bytes>>,
    /// `scheme://authority`.
    origin: String,
    /// The `Host` header: the endpoint's authority as written.
    host: HeaderValue,
    /// The endpoint's path up to `/@connections/`, with a trailing `/@connections/`.
    connections_path: String,
    region: String,
    /// The SDK's signing settings, without its list of headers to leave unsigned: only
    /// `host` and `content-type` are given to the signer, so the list would only cost an
    /// allocation per post.
    signing: SigningSettings,
    credentials: CredentialsCache,
    call_timeout: Duration,
}

impl fmt::Debug for LeanGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeanGateway")
            .field("origin", &self.inner.origin)
            .field("connections_path", &self.inner.connections_path)
            .field("region", &self.inner.region)
            .finish_non_exhaustive()
    }
}

impl LeanGateway {
    /// A gateway on `config.endpoint`, with the region and credentials provider of `sdk`.
    pub fn new(sdk: &SdkConfig, config: &ApiGatewayConfig) -> Result<Self, SetupError> {
        let endpoint = &config.endpoint;
        let bad = |reason| SetupError::Endpoint {
            endpoint: endpoint.clone(),
            reason,
        };
        let uri: hyper::Uri = endpoint.parse().map_err(|_| bad("not a URL"))?;
        let scheme = uri.scheme_str().ok_or(bad("no scheme"))?;
        if scheme != "https" && scheme != "http" {
            return Err(bad("the scheme is neither https nor http"));
        }
        if uri.query().is_some() {
            return Err(bad("it has a query string"));
        }
        let authority = uri.authority().ok_or(bad("no host"))?.as_str();
        let host =
            HeaderValue::from_str(authority).map_err(|_| bad("the host is not a header value"))?;
        let region = sdk.region().ok_or(SetupError::NoRegion)?.to_string();
        let provider = sdk
            .credentials_provider()
            .ok_or(SetupError::NoCredentials)?;

        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.connect_timeout));
        // A plain-HTTP endpoint (the local gateway) never checks a certificate: no reading
        // of the system's roots at cold start for it.
        let tls = if scheme == "http" {
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(no_roots()?)
        } else {
            hyper_rustls::HttpsConnectorBuilder::new()
                .with_native_roots()
                .map_err(SetupError::NoRootCertificates)?
        };
        let https = tls.https_or_http().enable_http1().wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(config.pool_size.max(1))
            .build(https);

        Ok(Self {
            inner: Arc::new(Inner {
                client,
                origin: format!("{scheme}://{authority}"),
                host,
                connections_path: format!("{}/@connections/", uri.path().trim_end_matches('/')),
                region,
                signing: {
                    let mut signing = SigningSettings::default();
                    signing.excluded_headers = None;
                    signing
                },
                credentials: CredentialsCache::new(provider),
                call_timeout: config.call_timeout,
            }),
        })
    }

    async fn signed_request(
        &self,
        method: Method,
        connection: &ConnectionId,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, GatewayError> {
        let inner = &*self.inner;
        let identity =
            inner.credentials.identity().await.map_err(|error| {
                gateway_error(Verdict::Forbidden, LeanError::Credentials(error))
            })?;
        let mut path =
            String::with_capacity(inner.connections_path.len() + connection.as_str().len() * 3);
        path.push_str(&inner.connections_path);
        encode_label(connection.as_str(), &mut path);
        let host = inner.host.to_str().unwrap_or_default();
        let has_body = method == Method::POST;
        let content_type = "application/octet-stream";
        let signable_headers = [("host", host), ("content-type", content_type)];
        let headers = if has_body {
            &signable_headers[..]
        } else {
            &signable_headers[..1]
        };
        let signing_params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&inner.region)
            .name(SIGNING_NAME)
            .time(SystemTime::now())
            .settings(inner.signing.clone())
            .build()
            .map_err(|error| gateway_error(Verdict::Unknown, LeanError::Signing(Box::new(error))))?
            .into();
        let signable = SignableRequest::new(
            method.as_str(),
            path.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(&body),
        )
        .map_err(|error| gateway_error(Verdict::Unknown, LeanError::Signing(Box::new(error))))?;
        let (instructions, _signature) = sign(signable, &signing_params)
            .map_err(|error| gateway_error(Verdict::Unknown, LeanError::Signing(Box::new(error))))?
            .into_parts();

        let mut uri = String::with_capacity(inner.origin.len() + path.len());
        uri.push_str(&inner.origin);
        uri.push_str(&path);
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(HOST, inner.host.clone());
        if has_body {
            builder = builder.header(CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        let mut request = builder.body(Full::new(body)).map_err(|error| {
            gateway_error(Verdict::Unknown, LeanError::Signing(Box::new(error)))
        })?;
        instructions.apply_to_request_http1x(&mut request);
        Ok(request)
    }
}

/// A TLS configuration that trusts no certificate, for an `http://` endpoint.
fn no_roots() -> Result<rustls::ClientConfig, SetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| SetupError::NoRootCertificates(std::io::Error::other(error)))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
}

/// Percent-encodes a path label as the SDK does: everything but RFC 3986's unreserved
/// characters (a connection ID's `+`, `/` and `=` become `%2B`, `%2F`, `%3D`).
fn encode_label(label: &str, into: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in label.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            into.push(char::from(byte));
        } else {
            into.push('%');
            into.push(char::from(HEX[usize::from(byte >> 4)]));
            into.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
}

/// Why a call failed, kept as the cause of the port's error.
#[derive(Debug, thiserror::Error)]
pub enum LeanError {
    /// API Gateway answered with a status that is not a success.
    #[error("API Gateway answered {status}{}{}", code.as_deref().map(|code| format!(" ({code})")).unwrap_or_default(), message.as_deref().map(|message| format!(": {message}")).unwrap_or_default())]
    Status {
        /// The HTTP status.
        status: u16,
        /// The error code (`x-amzn-ErrorType`, or the body's `code` / `__type`).
        code: Option<String>,
        /// The body's message.
        message: Option<String>,
    },
    /// No full answer within the call timeout.
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    /// The request could not be sent or its answer not received.
    #[error("the request to API Gateway failed")]
    Request(#[source] hyper_util::client::legacy::Error),
    /// The answer's body could not be read (or was over the limit).
    #[error("reading API Gateway's answer failed")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// No credentials to sign with.
    #[error("no AWS credentials to sign the request with")]
    Credentials(#[source] aws_credential_types::provider::error::CredentialsError),
    /// The request could not be built or signed.
    #[error("signing the request failed")]
    Signing(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A `GetConnection` answer that is not what the API documents.
    #[error("API Gateway's GetConnection answer is not readable: {0}")]
    Answer(String),
}

/// An error answer's code and message, as the SDK's JSON error parser reads them.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    code: Option<String>,
    #[serde(rename = "__type")]
    kind: Option<String>,
    #[serde(alias = "Message", alias = "errorMessage")]
    message: Option<String>,
}

/// The error code without a trailing `:{url}` or a leading `{namespace}#`.
fn sanitize_code(code: &str) -> &str {
    let code = code.split(':').next().unwrap_or(code);
    code.rsplit('#').next().unwrap_or(code)
}

/// The port's error for a non-success answer.
fn status_error(
    status: StatusCode,
    header_code: Option<&HeaderValue>,
    body: &[u8],
) -> GatewayError {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let code = header_code
        .and_then(|code| code.to_str().ok())
        .map(str::to_owned)
        .or(parsed.code)
        .or(parsed.kind)
        .map(|code| sanitize_code(&code).to_owned())
        .filter(|code| !code.is_empty());
    let verdict = classify(code.as_deref(), Some(status.as_u16()), false);
    gateway_error(
        verdict,
        LeanError::Status {
            status: status.as_u16(),
            code,
            message: parsed.message,
        },
    )
}

impl LeanGateway {
    async fn expect_success(
        &self,
        method: Method,
        connection: &ConnectionId,
        body: Bytes,
    ) -> Result<Bytes, GatewayError> {
        let inner = &*self.inner;
        let exchange = async {
            let request = self.signed_request(method, connection, body).await?;
            let response =
                inner.client.request(request).await.map_err(|error| {
                    gateway_error(Verdict::Unavailable, LeanError::Request(error))
                })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_ERROR_BODY_BYTES)
                .collect()
                .await
                .map_err(|error| gateway_error(Verdict::Unavailable, LeanError::Body(error)))?
                .to_bytes();
            if parts.status.is_success() {
                Ok(body)
            } else {
                Err(status_error(
                    parts.status,
                    parts.headers.get("x-amzn-errortype"),
                    &body,
                ))
            }
        };
        tokio::time::timeout(inner.call_timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(gateway_error(
                    Verdict::Unavailable,
                    LeanError::TimedOut(inner.call_timeout),
                ))
            })
    }
}

/// `GetConnection`'s answer.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConnectionAnswer {
    connected_at: Option<String>,
    last_active_at: Option<String>,
    identity: Option<IdentityAnswer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdentityAnswer {
    source_ip: Option<String>,
    user_agent: Option<String>,
}

fn timestamp(field: &str, value: Option<&str>) -> Result<Timestamp, GatewayError> {
    let Some(value) = value else {
        return Ok(Timestamp::EPOCH);
    };
    let time = DateTime::from_str(value, DateTimeFormat::DateTime).map_err(|error| {
        gateway_error(
            Verdict::Unknown,
            LeanError::Answer(format!("{field} {value:?}: {error}")),
        )
    })?;
    Ok(time
        .to_millis()
        .ok()
        .and_then(|millis| u64::try_from(millis).ok())
        .map_or(Timestamp::EPOCH, Timestamp::from_unix_millis))
}

#[async_trait]
impl ConnectionGateway for LeanGateway {
    async fn post(&self, connection: &ConnectionId, payload: Bytes) -> Result<(), GatewayError> {
        self.expect_success(Method::POST, connection, payload)
            .await?;
        Ok(())
    }

    async fn delete(&self, connection: &ConnectionId) -> Result<(), GatewayError> {
        self.expect_success(Method::DELETE, connection, Bytes::new())
            .await?;
        Ok(())
    }

    async fn get(&self, connection: &ConnectionId) -> Result<ConnectionInfo, GatewayError> {
        let body = self
            .expect_success(Method::GET, connection, Bytes::new())
            .await?;
        let answer: ConnectionAnswer = serde_json::from_slice(&body).map_err(|error| {
            gateway_error(Verdict::Unknown, LeanError::Answer(error.to_string()))
        })?;
        let identity = answer.identity;
        Ok(ConnectionInfo {
            connected_at: timestamp("connectedAt", answer.connected_at.as_deref())?,
            last_active_at: timestamp("lastActiveAt", answer.last_active_at.as_deref())?,
            source_ip: identity.as_ref().and_then(|i| i.source_ip.clone()),
            user_agent: identity.and_then(|i| i.user_agent),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_id_is_encoded_as_the_sdk_encodes_a_path_label() {
        let mut path = String::new();

        encode_label("L0SM9c+OF/vHcCIhw=_-", &mut path);

        assert_eq!(path, "L0SM9c%2BOF%2FvHcCIhw%3D_-");
    }

    #[test]
    fn error_codes_lose_their_url_and_namespace() {
        assert_eq!(
            sanitize_code("GoneException:http://internal.amazon.com/coral/"),
            "GoneException"
        );
        assert_eq!(
            sanitize_code("com.amazonaws.apigateway#LimitExceededException"),
            "LimitExceededException"
        );
    }

    #[test]
    fn the_code_comes_from_the_header_then_from_the_body() {
        let from_body = status_error(
            StatusCode::BAD_REQUEST,
            None,
            br#"{"__type":"GoneException","message":"gone"}"#,
        );
        let header = HeaderValue::from_static("PayloadTooLargeException");
        let from_header = status_error(StatusCode::BAD_REQUEST, Some(&header), b"");
        let bare = status_error(StatusCode::BAD_REQUEST, None, b"not json");

        assert!(matches!(from_body, GatewayError::Gone), "{from_body:?}");
        assert!(
            matches!(from_header, GatewayError::PayloadTooLarge),
            "{from_header:?}"
        );
        assert!(matches!(bare, GatewayError::Unknown(_)), "{bare:?}");
    }

    #[test]
    fn an_endpoint_that_is_not_an_http_url_is_refused_at_set_up() {
        let sdk = crate::aws::local_sdk_config("us-east-1", "AKID", "secret");
        for endpoint in [
            "not a url",
            "ftp://example.com/prod",
            "/prod",
            "https://x/prod?stage=1",
        ] {
            let error = LeanGateway::new(&sdk, &ApiGatewayConfig::new(endpoint)).unwrap_err();
            assert!(error.to_string().contains(endpoint), "{endpoint}: {error}");
        }
    }
}
