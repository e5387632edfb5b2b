//! The server's side of SigV4: the signature a request's content gives, recomputed with
//! `aws-sigv4` from the method, the path as received, the signed headers, the body and the
//! time in `x-amz-date`, and compared with the one in `Authorization`.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use axum::http::{HeaderMap, Method};

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
struct Authorization<'a> {
    access_key: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse(header: &str) -> Result<Authorization<'_>, String> {
    let rest = header
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("not AWS4-HMAC-SHA256")?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',').map(str::trim) {
        match part.split_once('=') {
            Some(("Credential", value)) => credential = Some(value),
            Some(("SignedHeaders", value)) => signed_headers = Some(value),
            Some(("Signature", value)) => signature = Some(value),
            _ => return Err(format!("unexpected part {part:?}")),
        }
    }
    let scope: Vec<&str> = credential.ok_or("no Credential")?.split('/').collect();
    let [access_key, _date, region, service, "aws4_request"] = scope[..] else {
        return Err(format!("bad credential scope {scope:?}"));
    };
    Ok(Authorization {
        access_key,
        region,
        service,
        signed_headers: signed_headers
            .ok_or("no SignedHeaders")?
            .split(';')
            .collect(),
        signature: signature.ok_or("no Signature")?,
    })
}

/// `20261203T104439Z` as a time.
fn amz_date(value: &str) -> Result<SystemTime, String> {
    let bad = || format!("bad x-amz-date {value:?}");
    if value.len() != 16 || !value.ends_with('Z') || value.as_bytes()[8] != b'T' {
        return Err(bad());
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &value[0..4],
        &value[4..6],
        &value[6..8],
        &value[9..11],
        &value[11..13],
        &value[13..15]
    );
    let time = aws_sdk_dynamodb::primitives::DateTime::from_str(
        &rfc3339,
        aws_sdk_dynamodb::primitives::DateTimeFormat::DateTime,
    )
    .map_err(|_| bad())?;
    SystemTime::try_from(time).map_err(|_| bad())
}

/// Whether the request's signature is the one `secret` gives for its content.
pub(crate) fn verify(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
    secret: &str,
) -> Result<(), String> {
    let header = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .ok_or("no Authorization header")?;
    let authorization = parse(header)?;
    let time = amz_date(
        headers
            .get("x-amz-date")
            .and_then(|value| value.to_str().ok())
            .ok_or("no x-amz-date")?,
    )?;
    // The signer adds `x-amz-date` (and a session token) itself.
    let mut signed = Vec::new();
    for name in &authorization.signed_headers {
        if *name == "x-amz-date" || *name == "x-amz-security-token" {
            continue;
        }
        let value = headers
            .get(*name)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| format!("signed header {name} is missing"))?;
        signed.push((*name, value));
    }
    let identity: Identity =
        Credentials::new(authorization.access_key, secret, None, None, "verify").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(authorization.region)
        .name(authorization.service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|error| error.to_string())?
        .into();
    let request = SignableRequest::new(
        method.as_str(),
        path,
        signed.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|error| error.to_string())?;
    let expected = sign(request, &params).map_err(|error| error.to_string())?;
    if expected.signature() == authorization.signature {
        Ok(())
    } else {
        Err(format!(
            "signature {} is not the expected {}",
            authorization.signature,
            expected.signature()
        ))
    }
}
