//! What a token must be: the limits, the rules every verifier applies besides its keys, and
//! why a key or a token is refused.

use std::time::Duration;

use wspush_domain::IdError;

/// The shortest HS256 secret accepted: RFC 7518 asks for a key as long as the hash (256 bits).
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// The longest token read; longer ones are refused before any decoding.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The longest a token may be valid for by default, from its `nbf` or `iat` (or, with
/// neither, from the moment it is checked) to its `exp`: 24 hours.
pub const DEFAULT_MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// Why the token configuration cannot be used (a cold-start error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The HS256 secret is too short to be safe.
    #[error("the HS256 secret is {len} bytes; at least {MIN_HS256_SECRET_BYTES} are required")]
    ShortSecret {
        /// Its length.
        len: usize,
    },
    /// The JWKS document is not a JSON object with a `keys` array.
    #[error("the JWKS document is not a JSON object with a `keys` array: {0}")]
    NotAJwks(String),
    /// One key of the JWKS cannot be read.
    #[error("JWKS key {index}: {reason}")]
    BadKey {
        /// Its position in `keys`.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// No key of the JWKS is an RS256 or ES256 signing key.
    #[error("the JWKS document has no RS256 (RSA) or ES256 (EC P-256) signing key")]
    NoUsableKey,
    /// Two keys share a `kid`, or several keys have none.
    #[error("JWKS key {index}: {reason}")]
    AmbiguousKey {
        /// Its position in `keys`.
        index: usize,
        /// Which ambiguity.
        reason: &'static str,
    },
    /// The JWKS or the secret could not be read from where it lives.
    #[error("{0}")]
    Unreadable(String),
}

/// Why a token was refused (the socket gets 401). Never holds the token itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Longer than [`MAX_TOKEN_BYTES`].
    #[error("the token is {len} bytes; at most {MAX_TOKEN_BYTES} are read")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// Not three base64url parts, or its header is not valid JSON.
    #[error("the token is not a well-formed JWT")]
    Malformed,
    /// The header lists critical extensions (`crit`): RFC 7515 4.1.11 says a token whose
    /// `crit` names an extension the recipient does not understand must be refused, and this
    /// verifier understands none.
    #[error("the token's header lists critical extensions (`crit`), which are not supported")]
    Critical,
    /// `exp` lies further from `nbf` or `iat` (or from now, with neither) than the configured
    /// maximum lifetime: a token that never expires is a credential that cannot be revoked.
    #[error("the token is valid for {lifetime_secs} s, more than the {max_secs} s allowed")]
    TooLongLived {
        /// From `nbf` or `iat` (the earlier) to `exp`, in seconds.
        lifetime_secs: u64,
        /// The configured maximum, in seconds.
        max_secs: u64,
    },
    /// Signed with an algorithm the configured keys are not for.
    #[error("the token's algorithm {0} is not accepted")]
    Algorithm(String),
    /// Its `kid` names no configured key, or it has no `kid` and several keys could apply.
    #[error("no configured key matches the token's `kid`")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// `exp` is in the past.
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("the token is not valid yet (`nbf`)")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("the token's issuer (`iss`) is not the configured one")]
    WrongIssuer,
    /// `aud` does not include the configured audience.
    #[error("the token's audience (`aud`) does not include the configured one")]
    WrongAudience,
    /// A claim that must be present is missing.
    #[error("the token has no `{0}` claim")]
    MissingClaim(String),
    /// A claim has the wrong type.
    #[error("the token's `{0}` claim has the wrong type")]
    BadClaim(String),
    /// `sub` is not a valid user ID.
    #[error("the token's `sub` is not a valid user ID: {0}")]
    BadSubject(IdError),
    /// The topics claim is not an array of valid grants.
    #[error("the token's `{claim}` claim: {reason}")]
    BadGrants {
        /// The claim's name.
        claim: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl From<jsonwebtoken::errors::Error> for TokenError {
    fn from(error: jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind;
        match error.into_kind() {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
            ErrorKind::InvalidAudience => TokenError::WrongAudience,
            ErrorKind::MissingRequiredClaim(claim) => TokenError::MissingClaim(claim),
            ErrorKind::InvalidClaimFormat(claim) => TokenError::BadClaim(claim),
            ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => {
                TokenError::Algorithm("(mismatched with its key)".to_owned())
            }
            // Bad base64, JSON or UTF-8 in the token, or key material that does not parse.
            _ => TokenError::Malformed,
        }
    }
}

/// What every verifier needs besides its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRules {
    /// The `iss` a token must have.
    pub issuer: String,
    /// The audience a token's `aud` must include.
    pub audience: String,
    /// The claim that lists the topics a token grants; `None` to leave topics to the
    /// subscription policy alone.
    pub topics_claim: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// The longest a token may be valid for (see [`DEFAULT_MAX_TOKEN_LIFETIME`]).
    pub max_lifetime: Duration,
}
