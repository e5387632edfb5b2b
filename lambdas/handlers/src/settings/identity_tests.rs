//! The identity settings: the authorizer, tokens and their keys (in the settings or read at
//! cold start), grants and subprotocols.

use super::tests::settings;
use super::*;

const SECRET: &str = "0123456789abcdef0123456789abcdef";

#[test]
fn the_identity_comes_from_principal_id_unless_configured() {
    let default = settings(&[]).identity().expect("valid");
    let custom = settings(&[(IDENTITY_KEY, "userId"), (INSECURE_IDENTITY_PARAM, "user")])
        .identity()
        .expect("valid");

    assert_eq!(default.authorizer_key, "principalId");
    assert_eq!(default.insecure_query_param, None);
    assert_eq!(custom.authorizer_key, "userId");
    assert_eq!(custom.insecure_query_param.as_deref(), Some("user"));
    assert!(default.token.is_none());
}

#[test]
fn a_secret_with_issuer_and_audience_requires_tokens_granting_topics_by_default() {
    let identity = settings(&[
        (JWT_HS256_SECRET, SECRET),
        (JWT_ISSUER, "https://issuer.example"),
        (JWT_AUDIENCE, "wspush"),
    ])
    .identity()
    .expect("valid");
    let off = settings(&[
        (JWT_HS256_SECRET, SECRET),
        (JWT_ISSUER, "https://issuer.example"),
        (JWT_AUDIENCE, "wspush"),
        (JWT_TOPICS_CLAIM, "off"),
    ])
    .identity()
    .expect("valid");

    let verifier = identity.token.expect("tokens required");
    assert_eq!(verifier.topics_claim(), Some("topics"));
    assert_eq!(off.token.expect("tokens required").topics_claim(), None);
}

#[test]
fn authorizer_grants_and_subprotocols_are_read_and_checked() {
    let identity = settings(&[
        (AUTHORIZER_GRANTS_KEY, " topics "),
        (SUBPROTOCOLS, "wspush.v2, wspush"),
    ])
    .identity()
    .expect("valid");
    assert_eq!(identity.authorizer_grants_key.as_deref(), Some("topics"));
    assert_eq!(
        identity.subprotocols,
        Some(vec!["wspush.v2".to_owned(), "wspush".to_owned()])
    );
    let defaults = settings(&[]).identity().expect("valid");
    assert_eq!(defaults.authorizer_grants_key, None);
    assert_eq!(defaults.subprotocols, None);

    let with_tokens = settings(&[
        (JWT_HS256_SECRET, SECRET),
        (JWT_ISSUER, "iss"),
        (JWT_AUDIENCE, "aud"),
        (AUTHORIZER_GRANTS_KEY, "topics"),
    ])
    .identity()
    .expect_err("grants from an authorizer that is not used");
    assert!(
        with_tokens.to_string().contains(AUTHORIZER_GRANTS_KEY),
        "{with_tokens}"
    );
    let bad = settings(&[(SUBPROTOCOLS, "wspush, chat v2")])
        .identity()
        .expect_err("a space in a protocol name");
    assert!(
        bad.to_string().contains(SUBPROTOCOLS) && bad.to_string().contains("`chat v2`"),
        "{bad}"
    );
}

#[test]
fn a_jwks_url_or_a_secret_arn_is_left_for_the_cold_start_and_checked_first() {
    let base = [(JWT_ISSUER, "iss"), (JWT_AUDIENCE, "aud")];
    let plan = |extra: (&'static str, &'static str)| {
        let mut pairs = base.to_vec();
        pairs.push(extra);
        settings(&pairs).identity_plan()
    };

    for url in [
        "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc/.well-known/jwks.json",
        "http://127.0.0.1:8123/jwks.json",
        "http://localhost/jwks.json",
    ] {
        let planned = plan((JWT_JWKS_URL, url)).expect(url);
        assert!(
            matches!(planned.remote(), Some(RemoteKeys::JwksUrl { url: u, .. }) if u == url),
            "{url}"
        );
        let not_ready = planned
            .ready()
            .expect_err("read at cold start only")
            .to_string();
        assert!(not_ready.contains(JWT_JWKS_URL), "{not_ready}");
    }
    let plain = plan((JWT_JWKS_URL, "http://idp.example.com/jwks.json"))
        .expect_err("plain HTTP to another host")
        .to_string();
    assert!(plain.contains("https://"), "{plain}");
    let disguised = plan((JWT_JWKS_URL, "http://127.0.0.1:1@idp.example.com/jwks.json"))
        .expect_err("userinfo that hides another host")
        .to_string();
    assert!(disguised.contains("`@`"), "{disguised}");
    let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:wspush/hs256-AbCdEf";
    assert!(matches!(
        plan((JWT_HS256_SECRET_ARN, arn)).expect("an ARN").remote(),
        Some(RemoteKeys::SecretArn(a)) if a == arn
    ));
    let both = settings(&[
        (JWT_ISSUER, "iss"),
        (JWT_AUDIENCE, "aud"),
        (JWT_HS256_SECRET, SECRET),
        (JWT_JWKS_URL, "https://idp.example.com/jwks.json"),
    ])
    .identity_plan()
    .expect_err("two key sources")
    .to_string();
    assert!(
        both.contains("not both") && !both.contains(SECRET),
        "{both}"
    );
}

#[test]
fn bad_token_settings_name_their_variable_and_never_echo_the_secret() {
    let base = [(JWT_ISSUER, "iss"), (JWT_AUDIENCE, "aud")];
    let case = |extra: &[(&'static str, &'static str)]| {
        let mut pairs = base.to_vec();
        pairs.extend_from_slice(extra);
        settings(&pairs).identity().expect_err("invalid")
    };

    let short = case(&[(JWT_HS256_SECRET, "too-short-secret")]);
    assert!(short.to_string().contains(JWT_HS256_SECRET), "{short}");
    assert!(!short.to_string().contains("too-short-secret"), "{short}");
    let both = case(&[(JWT_HS256_SECRET, SECRET), (JWT_JWKS, r#"{"keys":[]}"#)]);
    assert!(both.to_string().contains("not both"), "{both}");
    let jwks = case(&[(JWT_JWKS, r#"{"keys":[]}"#)]);
    assert!(jwks.to_string().contains(JWT_JWKS), "{jwks}");
    let not_json = case(&[(JWT_JWKS, "keys")]);
    assert!(
        not_json.to_string().contains("not a JSON object"),
        "{not_json}"
    );
    let leeway = case(&[(JWT_HS256_SECRET, SECRET), (JWT_LEEWAY_SECONDS, "3600")]);
    assert!(leeway.to_string().contains(JWT_LEEWAY_SECONDS), "{leeway}");
    let no_key = settings(&base)
        .identity()
        .expect_err("issuer without a key");
    assert!(no_key.to_string().contains(JWT_JWKS), "{no_key}");
    let insecure = case(&[
        (JWT_HS256_SECRET, SECRET),
        (INSECURE_IDENTITY_PARAM, "user"),
    ]);
    assert!(
        insecure.to_string().contains(INSECURE_IDENTITY_PARAM),
        "{insecure}"
    );
    for missing in [JWT_ISSUER, JWT_AUDIENCE] {
        let pairs: Vec<_> = base
            .iter()
            .copied()
            .filter(|(key, _)| *key != missing)
            .chain([(JWT_HS256_SECRET, SECRET)])
            .collect();
        assert_eq!(
            settings(&pairs).identity().expect_err("missing"),
            SettingsError::Missing(missing)
        );
    }
}

#[test]
fn the_token_lifetime_defaults_to_a_day_and_zero_is_refused_by_name() {
    let base = [
        (JWT_ISSUER, "iss"),
        (JWT_AUDIENCE, "aud"),
        (JWT_HS256_SECRET, SECRET),
    ];
    assert!(settings(&base).identity().expect("valid").token.is_some());
    let mut zero = base.to_vec();
    zero.push((JWT_MAX_LIFETIME_SECONDS, "0"));
    let error = settings(&zero).identity().expect_err("0 s");
    assert!(
        error.to_string().contains(JWT_MAX_LIFETIME_SECONDS),
        "{error}"
    );
}
