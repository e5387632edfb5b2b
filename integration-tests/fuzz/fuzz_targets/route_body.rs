//! Route bodies (`subscribe` / `unsubscribe` messages): a valid request or a 400 message,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wspush_handlers::subscribe::parse_route_body;

fuzz_target!(|data: &[u8]| {
    // API Gateway hands text frames to the route as a string; binary frames are base64.
    let text = std::str::from_utf8(data).ok();
    match parse_route_body(text) {
        Ok(request) => assert!(!request.topics.is_empty()),
        Err(error) => assert!(!error.to_string().is_empty()),
    }
});
