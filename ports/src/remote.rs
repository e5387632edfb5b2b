//! Documents read from outside while the functions run: an identity provider's JWKS (at
//! cold start and again when its keys rotate), a secret from Secrets Manager or SSM (at cold
//! start).

use std::time::Duration;

use async_trait::async_trait;

use crate::Cause;

/// What went wrong reading a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteProblem {
    /// The location cannot be read by this edge or adapter (not a URL, not an ARN it reads,
    /// no root certificates to check HTTPS with).
    #[error("{0}")]
    Unusable(&'static str),
    /// The request failed before an answer (connection, TLS, DNS).
    #[error("the request failed")]
    Unreachable,
    /// No answer within the adapter's timeout.
    #[error("no answer within {} s", .0.as_secs())]
    TimedOut(Duration),
    /// An HTTP answer other than 200.
    #[error("answered {0}, not 200")]
    Status(u16),
    /// The answer's body could not be read whole within the limit.
    #[error("the body could not be read whole (at most {limit} bytes)")]
    Body {
        /// The most bytes read.
        limit: usize,
    },
    /// The document is not UTF-8 text.
    #[error("the body is not UTF-8")]
    NotText,
    /// The service refused, with its error code and message.
    #[error("{code}: {message}")]
    Refused {
        /// The service's error code (`ResourceNotFoundException`, ...).
        code: String,
        /// Its message.
        message: String,
    },
    /// The service answered without the document.
    #[error("{0}")]
    Missing(&'static str),
}

/// Why a document could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading {location}: {problem}")]
pub struct RemoteError {
    /// Where it was read from (a URL, an ARN).
    pub location: String,
    /// What went wrong.
    pub problem: RemoteProblem,
    /// The underlying error, if any.
    #[source]
    pub source: Option<Cause>,
}

impl RemoteError {
    /// An error reading `location`.
    pub fn new(location: impl Into<String>, problem: RemoteProblem) -> Self {
        Self {
            location: location.into(),
            problem,
            source: None,
        }
    }

    /// The same error, keeping `source` as its cause.
    #[must_use]
    pub fn caused_by(mut self, source: impl Into<Cause>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The error and each of its causes, as one line (a DNS, TLS or credentials problem is
    /// only in the causes).
    pub fn with_causes(&self) -> String {
        crate::causes::with_causes(self)
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
