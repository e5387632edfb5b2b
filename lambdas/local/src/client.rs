//! A client of the local gateway's plain HTTP routes (`/notifications`, `/_local/...`), for
//! the `wspush` CLI and the tests: HTTP/1.1 over loopback, one request per connection,
//! `Content-Length` bodies only. (The `@connections` API is for the real adapter, which
//! signs its calls.)

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens there (is the gateway running?).
    #[error("connecting to {authority}")]
    Connect {
        /// The `host:port` asked for.
        authority: String,
        /// The socket's error.
        #[source]
        source: std::io::Error,
    },
    /// The connection broke while sending or reading.
    #[error("talking to {authority}")]
    Io {
        /// The `host:port` asked for.
        authority: String,
        /// The socket's error.
        #[source]
        source: std::io::Error,
    },
    /// The answer had no HTTP status line.
    #[error("{authority} answered something that is not HTTP")]
    NotHttp {
        /// The `host:port` asked for.
        authority: String,
    },
}

/// Sends `method path` with `body` (JSON) to `authority` (`host:port`) and returns the
/// status and the body of the answer.
pub async fn request(
    authority: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<(u16, String), ClientError> {
    let io = |source| ClientError::Io {
        authority: authority.to_owned(),
        source,
    };
    let mut stream =
        TcpStream::connect(authority)
            .await
            .map_err(|source| ClientError::Connect {
                authority: authority.to_owned(),
                source,
            })?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.map_err(io)?;
    stream.write_all(body).await.map_err(io)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.map_err(io)?;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| ClientError::NotHttp {
            authority: authority.to_owned(),
        })?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_owned();
    Ok((status, body))
}
