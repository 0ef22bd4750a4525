//! Fuzzes the capped line reader: no panic, no line over the cap.

#![no_main]

use libfuzzer_sys::fuzz_target;
use only1mcp_transport::framing::{Line, LineReader};

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        let mut reader = LineReader::new(tokio::io::BufReader::with_capacity(7, data), 64);
        while let Ok(Some(line)) = reader.next_line().await {
            if let Line::Data(bytes) = line {
                assert!(bytes.len() <= 64 && !bytes.contains(&b'\n'));
            }
        }
    });
});
