//! Documents read from outside while the functions run: an identity provider's JWKS (at
//! cold start and again when its keys rotate), a secret from Secrets Manager or SSM (at cold
//! start).

use async_trait::async_trait;

use crate::Cause;

/// Why a document could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading {location}: {reason}")]
pub struct RemoteError {
    /// Where it was read from (a URL, an ARN).
    pub location: String,
    /// What went wrong, in words.
    pub reason: String,
    /// The underlying error, if any.
    #[source]
    pub source: Option<Cause>,
}

impl RemoteError {
    /// An error reading `location`, for `reason`.
    pub fn new(location: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            reason: reason.into(),
            source: None,
        }
    }

    /// The same error, keeping `source` as its cause.
    #[must_use]
    pub fn caused_by(mut self, source: impl Into<Cause>) -> Self {
        self.source = Some(source.into());
        self
    }
}

/// One document, read whole each time it is asked for.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RemoteDocument: Send + Sync {
    /// The document's text. MUST fail, naming the problem, rather than return a partial or
    /// an error page's body (a status other than 200, a body over the adapter's limit).
    async fn fetch(&self) -> Result<String, RemoteError>;

    /// Where it is read from, for logs and errors (never a credential).
    fn location(&self) -> String;
}
