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
use wspush_ports::{RemoteDocument, RemoteError};

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
        let uri: hyper::Uri = url
            .parse()
            .map_err(|error| RemoteError::new(url, "not a URL").caused_by(error))?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|error| {
                RemoteError::new(url, "no root certificates to check HTTPS with").caused_by(error)
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
        let fail = |reason: &str| RemoteError::new(location.clone(), reason);
        let request = Request::get(self.url.clone())
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, concat!("wspush/", env!("CARGO_PKG_VERSION")))
            .body(Empty::<Bytes>::new())
            .map_err(|error| fail("cannot build the request").caused_by(error))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|error| fail("the request failed").caused_by(error))?;
        let status = response.status();
        if status != hyper::StatusCode::OK {
            return Err(fail(&format!("answered {status}, not 200")));
        }
        let body = Limited::new(response.into_body(), MAX_DOCUMENT_BYTES)
            .collect()
            .await
            .map_err(|error| {
                fail(&format!(
                    "the body could not be read whole (at most {MAX_DOCUMENT_BYTES} bytes)"
                ))
                .caused_by(error)
            })?
            .to_bytes();
        String::from_utf8(body.to_vec())
            .map_err(|error| fail("the body is not UTF-8").caused_by(error))
    }
}

#[async_trait]
impl RemoteDocument for HttpDocument {
    async fn fetch(&self) -> Result<String, RemoteError> {
        match tokio::time::timeout(FETCH_TIMEOUT, self.get()).await {
            Ok(result) => result,
            Err(_) => Err(RemoteError::new(
                self.location(),
                format!("no answer within {} s", FETCH_TIMEOUT.as_secs()),
            )),
        }
    }

    fn location(&self) -> String {
        self.url.to_string()
    }
}
