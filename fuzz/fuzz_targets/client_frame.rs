//! Any bytes a client can send: parsing never panics, and whatever parses
//! serializes and parses back to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::ClientMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = serde_json::from_slice::<ClientMessage>(data) {
        let text = serde_json::to_string(&msg).expect("a parsed message serializes");
        let back: ClientMessage = serde_json::from_str(&text).expect("and parses again");
        assert_eq!(back, msg);
    }
});
