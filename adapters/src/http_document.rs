//! A document fetched with an HTTP `GET`: an identity provider's JWKS (Cognito's
//! `/.well-known/jwks.json`, Auth0's, Okta's).
//!
//! HTTPS through rustls (the ring provider) with the system's root certificates; plain HTTP
//! too, which the settings allow for loopback addresses only (a local JWKS server in tests).
//! Each fetch has a timeout, only a 200 counts, and the body is read up to a limit, so a
//! slow or hostile server can neither hang a cold start nor fill the memory.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::Request;
use hyper::header::{ACCEPT, USER_AGENT};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use wspush_ports::{RemoteDocument, RemoteError, RemoteProblem};

/// How long one fetch may take, connection included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest document read (a JWKS of a few keys is a few KB).
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// A document at a URL.
pub struct HttpDocument {
    url: hyper::Uri,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl HttpDocument {
    /// The document at `url` (`https://`, or `http://` for a local server).
    pub fn new(url: &str) -> Result<Self, RemoteError> {
        let uri: hyper::Uri = url.parse().map_err(|error| {
            RemoteError::new(url, RemoteProblem::Unusable("not a URL")).caused_by(error)
        })?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|error| {
                RemoteError::new(
                    url,
                    RemoteProblem::Unusable("no root certificates to check HTTPS with"),
                )
                .caused_by(error)
            })?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            url: uri,
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    async fn get(&self) -> Result<String, RemoteError> {
        let location = self.location();
        let fail = |problem: RemoteProblem| RemoteError::new(location.clone(), problem);
        let request = Request::get(self.url.clone())
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, concat!("wspush/", env!("CARGO_PKG_VERSION")))
            .body(Empty::<Bytes>::new())
            .map_err(|error| {
                fail(RemoteProblem::Unusable("cannot build the request")).caused_by(error)
            })?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|error| fail(RemoteProblem::Unreachable).caused_by(error))?;
        let status = response.status();
        if status != hyper::StatusCode::OK {
            return Err(fail(RemoteProblem::Status(status.as_u16())));
        }
        let body = Limited::new(response.into_body(), MAX_DOCUMENT_BYTES)
            .collect()
            .await
            .map_err(|error| {
                fail(RemoteProblem::Body {
                    limit: MAX_DOCUMENT_BYTES,
                })
                .caused_by(error)
            })?
            .to_bytes();
        String::from_utf8(body.to_vec())
            .map_err(|error| fail(RemoteProblem::NotText).caused_by(error))
    }
}

#[async_trait]
impl RemoteDocument for HttpDocument {
    async fn fetch(&self) -> Result<String, RemoteError> {
        match tokio::time::timeout(FETCH_TIMEOUT, self.get()).await {
            Ok(result) => result,
            Err(_) => Err(RemoteError::new(
                self.location(),
                RemoteProblem::TimedOut(FETCH_TIMEOUT),
            )),
        }
    }

    fn location(&self) -> String {
        self.url.to_string()
    }
}
