//! API Gateway's URLs: a WebSocket stage's `wss://` URL and the `@connections` management
//! endpoint that follows from it; and which transport calls that endpoint.

use std::fmt;
use std::str::FromStr;

/// The management endpoint of a WebSocket stage URL: `wss://host/stage` becomes
/// `https://host/stage` (and `ws://` becomes `http://`, for the local gateway).
pub fn management_endpoint(websocket_url: &str) -> Option<String> {
    let (scheme, rest) = websocket_url.split_once("://")?;
    let scheme = match scheme {
        "wss" => "https",
        "ws" => "http",
        _ => return None,
    };
    (!rest.is_empty()).then(|| format!("{scheme}://{}", rest.trim_end_matches('/')))
}

/// Which implementation carries the calls (`WSPUSH_TRANSPORT=lean|sdk`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// hyper and `aws-sigv4` directly (`wspush_adapters::apigateway::LeanGateway`): the
    /// default, measured the faster.
    #[default]
    Lean,
    /// The AWS SDK's client (`wspush_adapters::apigateway::SdkGateway`).
    Sdk,
}

impl Transport {
    /// The setting's value for this transport.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Lean => "lean",
            Transport::Sdk => "sdk",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A transport name that is neither `lean` nor `sdk`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown transport {0:?}: expected lean or sdk")]
pub struct UnknownTransport(pub String);

impl FromStr for Transport {
    type Err = UnknownTransport;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "lean" => Ok(Transport::Lean),
            "sdk" => Ok(Transport::Sdk),
            other => Err(UnknownTransport(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_names_parse_and_print_as_the_setting_spells_them() {
        assert_eq!("lean".parse(), Ok(Transport::Lean));
        assert_eq!("sdk".parse(), Ok(Transport::Sdk));
        assert_eq!(Transport::Sdk.to_string(), "sdk");
        let error = "hyper".parse::<Transport>().unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"unknown transport "hyper": expected lean or sdk"#
        );
    }

    #[test]
    fn a_wss_stage_url_gives_its_https_management_endpoint() {
        assert_eq!(
            management_endpoint("wss://abc123.execute-api.eu-west-1.amazonaws.com/prod/"),
            Some("https://abc123.execute-api.eu-west-1.amazonaws.com/prod".to_owned())
        );
        assert_eq!(
            management_endpoint("ws://127.0.0.1:8080/local"),
            Some("http://127.0.0.1:8080/local".to_owned())
        );
    }

    #[test]
    fn a_url_that_is_not_a_websocket_url_gives_no_endpoint() {
        assert_eq!(management_endpoint("https://example.com/prod"), None);
        assert_eq!(management_endpoint("wss://"), None);
        assert_eq!(management_endpoint("example.com"), None);
    }
}
