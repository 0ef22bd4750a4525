//! The context diet: what the gateway does to keep tool catalogs small in
//! the model's window.
//!
//! - [`compact`]: a deterministic rewrite of a tool that keeps it callable
//!   with exactly the same arguments (annotations and prose trimmed, no
//!   validation keyword touched).
//! - [`search`]: ranking tools by a natural-language query, for the
//!   `search_tools` meta tool of the `discover` mode.
//!
//! Pure functions over JSON values: no IO, no tokenizer (token counting lives
//! in `only1mcp-proxy`, which owns the tokenizer's data).

pub mod compact;
pub mod search;
