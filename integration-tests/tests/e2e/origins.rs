//! The local gateway answers programs and its own pages, not other sites in the developer's
//! browser: a foreign `Origin` or `Host` is refused with 403 before any route runs, and a
//! notification must be `application/json` (a page cannot send that cross-site without a
//! preflight).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use wspush_local::LocalConfig;

use crate::helpers::Setup;

/// `method path` with `headers` (a `Host` of the gateway's address unless given) and `body`;
/// the answer's status and body.
async fn send(
    setup: &Setup,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let address = setup.gateway.address();
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        request.push_str(&format!("Host: {address}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, body.to_owned())
}

/// Opens a socket as `user` with `Origin: origin`; the HTTP status of a refusal, or 101.
async fn open_with_origin(setup: &Setup, user: &str, origin: &str) -> u16 {
    let mut request = format!("{}?user={user}", setup.gateway.websocket_url())
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("Origin", HeaderValue::from_str(origin).expect("header"));
    match connect_async(request).await {
        Ok((_socket, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP answer, got {other:?}"),
    }
}

const BROADCAST: &str = r#"{"data":"from another site"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_sites_page_can_neither_push_nor_open_sockets_nor_read_by_rebinding() {
    let setup = Setup::memory().await;
    let mut ana = setup.connect("ana").await;
    let port = setup.gateway.address().port();

    // A cross-site form post: text/plain, no preflight, the browser adds its Origin.
    let (status, body) = send(
        &setup,
        "POST",
        "/notifications",
        &[
            ("Origin", "https://evil.example"),
            ("Content-Type", "text/plain"),
        ],
        BROADCAST,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains(r#"Origin \"https://evil.example\" is not this gateway's own"#),
        "{body}"
    );
    // The same with the JSON content type a preflight would have had to allow.
    let (status, _) = send(
        &setup,
        "POST",
        "/notifications",
        &[("Origin", "null"), ("Content-Type", "application/json")],
        BROADCAST,
    )
    .await;
    assert_eq!(status, 403);
    // A program's post that is not JSON.
    let (status, body) = send(
        &setup,
        "POST",
        "/notifications",
        &[("Content-Type", "text/plain")],
        BROADCAST,
    )
    .await;
    assert_eq!(status, 415, "{body}");
    assert!(
        body.contains("needs Content-Type: application/json"),
        "{body}"
    );
    ana.expect_nothing().await;

    // DNS rebinding: the page's own name, resolved to 127.0.0.1.
    let rebound = format!("evil.example:{port}");
    for (method, path) in [("GET", "/"), ("GET", "/_local/virtual-connections")] {
        let (status, body) = send(&setup, method, path, &[("Host", &rebound)], "").await;
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert!(body.contains("is not this gateway's address"), "{body}");
    }

    let before = setup.gateway.open_connections();
    assert_eq!(
        open_with_origin(&setup, "mallory", "https://evil.example").await,
        403
    );
    // Another machine's page on the gateway's port is another site too.
    let lan_page = format!("http://203.0.113.5:{port}");
    assert_eq!(open_with_origin(&setup, "mallory", &lan_page).await, 403);
    assert_eq!(
        setup.gateway.open_connections(),
        before,
        "no socket was opened"
    );
    setup.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_own_pages_programs_and_allowed_origins_get_through() {
    let setup = Setup::memory_with(LocalConfig {
        allowed_origins: vec!["http://localhost:3000".to_owned()],
        ..LocalConfig::default()
    })
    .await;
    let address = setup.gateway.address();
    let mut ana = setup.connect("ana").await;

    let own = format!("http://{address}");
    let localhost = format!("http://localhost:{}", address.port());
    for origin in [own.as_str(), localhost.as_str(), "http://localhost:3000"] {
        assert_eq!(
            open_with_origin(&setup, "bob", origin).await,
            101,
            "{origin}"
        );
        let (status, body) = send(
            &setup,
            "POST",
            "/notifications",
            &[
                ("Origin", origin),
                ("Content-Type", "application/json; charset=utf-8"),
            ],
            r#"{"users":["ana"],"data":"hi"}"#,
        )
        .await;
        assert_eq!(status, 200, "{origin}: {body}");
        assert_eq!(ana.next_text().await, r#""hi""#);
    }
    let (status, _) = send(
        &setup,
        "GET",
        "/",
        &[("Host", &format!("localhost:{}", address.port()))],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        open_with_origin(&setup, "bob", "http://localhost:3001").await,
        403
    );
    setup.finish().await;
}
