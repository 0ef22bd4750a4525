//! Token counts with a real tokenizer: OpenAI's `o200k_base` BPE (the
//! encoding of GPT-4o and later), whose data ships inside `tiktoken-rs`, so
//! counting needs no network.
//!
//! Building the encoder takes ~0.1 s (release build), so it is made once, on
//! first use, and never on the request path: views count their listings
//! lazily, and only `auto` profiles need a count while a catalog is built.

use std::sync::OnceLock;

use tiktoken_rs::CoreBPE;

/// The encoding every count uses.
pub const ENCODING: &str = "o200k_base";

fn encoder() -> &'static CoreBPE {
    static ENCODER: OnceLock<CoreBPE> = OnceLock::new();
    ENCODER.get_or_init(|| {
        // The BPE ranks are compiled into the crate: this cannot fail short of
        // a broken build of tiktoken-rs itself.
        tiktoken_rs::o200k_base().expect("the o200k_base data ships inside tiktoken-rs")
    })
}

/// Builds the encoder now (call it from a blocking thread to take the cost
/// off a later request).
pub fn warm() {
    let _ = encoder();
}

/// How many tokens `text` is, as a model reading it would see it (special
/// tokens are counted as ordinary text).
pub fn count(text: &str) -> usize {
    encoder().encode_ordinary(text).len()
}
