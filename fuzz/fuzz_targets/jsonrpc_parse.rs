//! Fuzzes the JSON-RPC frame parser with arbitrary bytes: it must never
//! panic, and every message it accepts must serialize and parse back.

#![no_main]

use libfuzzer_sys::fuzz_target;
use only1mcp_core::jsonrpc::{self, Frame};

fuzz_target!(|data: &[u8]| {
    if let Ok(Frame::Single(message)) = jsonrpc::parse(data) {
        let bytes = message.to_vec();
        assert!(jsonrpc::parse(&bytes).is_ok(), "re-parse failed");
    }
});
