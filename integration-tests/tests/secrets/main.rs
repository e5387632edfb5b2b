//! The HS256 token secret read at cold start from Secrets Manager or an SSM `SecureString`
//! parameter, named by its ARN (`WSPUSH_JWT_HS256_SECRET_ARN`), through the real `AwsSecret`
//! adapter against moto's server; and the errors when it cannot be read or used, which name
//! the variable and never the secret.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;
use wspush_adapters::AwsSecret;
use wspush_handlers::settings::{self, RemoteKeys, Settings};
use wspush_handlers::{IdentitySource, SettingsError};
use wspush_integration_tests::moto;
use wspush_ports::{RemoteDocument, RemoteError, RemoteProblem};

const SECRET: &str = "a-secret-kept-in-secrets-manager-not-env";

/// The identity the settings describe with `arn` as the secret's ARN, resolved on moto.
async fn resolve(arn: &str) -> Result<IdentitySource, SettingsError> {
    let vars = HashMap::from([
        (settings::JWT_HS256_SECRET_ARN, arn.to_owned()),
        (settings::JWT_ISSUER, "iss".to_owned()),
        (settings::JWT_AUDIENCE, "aud".to_owned()),
    ]);
    let plan = Settings::from_lookup(|key| vars.get(key).cloned()).identity_plan()?;
    assert!(matches!(plan.remote(), Some(RemoteKeys::SecretArn(_))));
    let sdk = moto::sdk_config();
    plan.resolve(|keys| match keys {
        RemoteKeys::SecretArn(arn) => AwsSecret::from_arn(&sdk, arn)
            .map(|secret| Arc::new(secret) as Arc<dyn RemoteDocument>)
            .ok_or_else(|| RemoteError::new(arn, RemoteProblem::Unusable("not a secret ARN"))),
        RemoteKeys::JwksUrl { url, .. } => Err(RemoteError::new(
            url,
            RemoteProblem::Unusable("not in this test"),
        )),
    })
    .await
}

fn token(secret: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "ana", "iss": "iss", "aud": "aud", "exp": now + 60, "iat": now}),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

fn verifies(identity: &IdentitySource, token: &str) -> bool {
    identity
        .token
        .as_ref()
        .expect("tokens required")
        .verify(token)
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_is_read_from_secrets_manager_by_its_arn() {
    let client = aws_sdk_secretsmanager::Client::new(&moto::sdk_config());
    let created = client
        .create_secret()
        .name(format!("wspush/hs256-{}", fastrand::u32(..)))
        .secret_string(format!("{SECRET}\n"))
        .send()
        .await
        .expect("create the secret");
    let arn = created.arn().expect("an ARN");

    let identity = resolve(arn).await.expect("the secret is read");

    assert!(
        verifies(&identity, &token(SECRET)),
        "the trailing newline is not part of it"
    );
    assert!(!verifies(
        &identity,
        &token("another-secret-of-at-least-32-bytes")
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_is_read_from_an_ssm_secure_string_by_its_arn() {
    let client = aws_sdk_ssm::Client::new(&moto::sdk_config());
    let name = format!("/wspush/hs256-{}", fastrand::u32(..));
    client
        .put_parameter()
        .name(&name)
        .value(SECRET)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("put the parameter");
    let arn = client
        .get_parameter()
        .name(&name)
        .send()
        .await
        .expect("read it back")
        .parameter
        .and_then(|parameter| parameter.arn)
        .expect("an ARN");

    let identity = resolve(&arn).await.expect("the parameter is read");

    assert!(verifies(&identity, &token(SECRET)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_short_secret_fails_the_cold_start_naming_the_variable_not_the_secret() {
    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:wspush/none-AbCdEf";
    let client = aws_sdk_secretsmanager::Client::new(&moto::sdk_config());
    let short = client
        .create_secret()
        .name(format!("wspush/short-{}", fastrand::u32(..)))
        .secret_string("short-secret")
        .send()
        .await
        .expect("create the secret");

    let missing_error = resolve(missing)
        .await
        .expect_err("no such secret")
        .to_string();
    let short_error = resolve(short.arn().expect("an ARN"))
        .await
        .expect_err("too short")
        .to_string();
    let not_an_arn = Settings::from_lookup(|key| match key {
        settings::JWT_HS256_SECRET_ARN => Some("my-secret".to_owned()),
        settings::JWT_ISSUER | settings::JWT_AUDIENCE => Some("x".to_owned()),
        _ => None,
    })
    .identity_plan()
    .expect_err("not an ARN")
    .to_string();

    assert!(
        missing_error.contains(settings::JWT_HS256_SECRET_ARN)
            && missing_error.contains("ResourceNotFoundException"),
        "{missing_error}"
    );
    assert!(
        short_error.contains("at least 32") && !short_error.contains("short-secret"),
        "{short_error}"
    );
    assert!(
        not_an_arn.contains("must be the ARN of a Secrets Manager secret"),
        "{not_an_arn}"
    );
}
