//! Notification request parsing: any bytes give a request or an error, never a panic; a
//! parsed request obeys the format's rules and survives its own serialization.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wspush_domain::NotificationRequest;
use wspush_domain::limits::MAX_PAYLOAD_BYTES;

fuzz_target!(|data: &[u8]| {
    match NotificationRequest::parse_slice(data) {
        Ok(request) => {
            assert!(request.payload().len() <= MAX_PAYLOAD_BYTES);
            assert_ne!(request.payload(), "null");
            let again = NotificationRequest::parse(&request.to_json())
                .expect("a parsed request serializes to a valid request");
            assert_eq!(again, request);
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }
});
