//! API Gateway's URLs: a WebSocket stage's `wss://` URL and the `@connections` management
//! endpoint that follows from it.

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

#[cfg(test)]
mod tests {
    use super::*;

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
