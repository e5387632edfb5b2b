//! `wspush token`: a signed development token.

use anyhow::Context;
use serde_json::json;
use wspush_domain::{TopicGrants, UserId};

use crate::{TokenArgs, invalid};

/// Prints a signed development token.
pub(crate) fn token(args: &TokenArgs) -> anyhow::Result<()> {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};

    UserId::parse(args.sub.as_str()).map_err(|error| invalid(format!("--sub: {error}")))?;
    TopicGrants::parse(args.topics.iter().map(String::as_str))
        .map_err(|error| invalid(format!("--topics: {error}")))?;
    if args.secret.len() < 32 {
        return Err(invalid("--secret must be at least 32 bytes"));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs();
    let mut claims = json!({
        "sub": args.sub, "iss": args.issuer, "aud": args.audience,
        "iat": now, "exp": now.saturating_add(args.ttl_secs),
    });
    if args.topics_claim != "off" {
        claims[&args.topics_claim] = json!(args.topics);
    }
    let token = encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(args.secret.as_bytes()),
    )
    .context("signing the token")?;
    println!("{token}");
    Ok(())
}
