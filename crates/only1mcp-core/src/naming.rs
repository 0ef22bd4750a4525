//! Namespacing of tool and prompt names across servers.
//!
//! An exposed name is `server` + separator + the backend's own name (default
//! separator `__`, so `fs__read_file`). [`Namespace::split`] undoes
//! [`Namespace::join`] for every server id that [`Namespace::check_server_id`]
//! accepts: the first occurrence of the separator in a joined name is always
//! the one the join put there, so tool names may contain the separator.

use std::fmt;

/// The characters allowed in a separator.
fn separator_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Why a separator or server id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamingError {
    /// The separator is empty.
    #[error("the separator must not be empty")]
    EmptySeparator,
    /// The separator has a character outside `[A-Za-z0-9_.-]`.
    #[error("the separator {0:?} may only contain ASCII letters, digits, '_', '-' and '.'")]
    BadSeparator(String),
    /// The server id is empty.
    #[error("the server id must not be empty")]
    EmptyServerId,
    /// The server id has a character outside `[A-Za-z0-9_-]`.
    #[error("the server id {0:?} may only contain ASCII letters, digits, '_' and '-'")]
    BadServerId(String),
    /// The server id would make joined names ambiguous.
    #[error(
        "the server id {id:?} contains or ends with part of the separator {separator:?}, so its names could not be split back"
    )]
    AmbiguousServerId {
        /// The id.
        id: String,
        /// The separator.
        separator: String,
    },
}

/// A validated separator: how exposed names are joined and split.
///
/// ```
/// use only1mcp_core::naming::{Namespace, NamingError};
///
/// let namespace = Namespace::default(); // `__`
/// assert_eq!(namespace.join("fs", "read_file"), "fs__read_file");
/// // The first separator is the one `join` put there, so a tool's own name may
/// // contain the separator.
/// assert_eq!(namespace.split("fs__read__file"), Some(("fs", "read__file")));
/// assert_eq!(namespace.split("read_file"), None);
///
/// // A server id that would make its names ambiguous is refused up front.
/// assert!(namespace.check_server_id("git").is_ok());
/// assert!(matches!(
///     namespace.check_server_id("git_"),
///     Err(NamingError::AmbiguousServerId { .. })
/// ));
///
/// // Another separator, checked.
/// assert_eq!(Namespace::new(".")?.join("fs", "read_file"), "fs.read_file");
/// assert_eq!(Namespace::new("/"), Err(NamingError::BadSeparator("/".to_owned())));
/// # Ok::<(), NamingError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    separator: String,
}

impl Default for Namespace {
    fn default() -> Self {
        Self {
            separator: Self::DEFAULT_SEPARATOR.to_owned(),
        }
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.separator)
    }
}

impl Namespace {
    /// The default separator.
    pub const DEFAULT_SEPARATOR: &'static str = "__";

    /// A namespace with the given separator.
    pub fn new(separator: &str) -> Result<Self, NamingError> {
        if separator.is_empty() {
            return Err(NamingError::EmptySeparator);
        }
        if !separator.chars().all(separator_char) {
            return Err(NamingError::BadSeparator(separator.to_owned()));
        }
        Ok(Self {
            separator: separator.to_owned(),
        })
    }

    /// The separator.
    pub fn separator(&self) -> &str {
        &self.separator
    }

    /// Checks that `id` can prefix names: allowed characters, and the first
    /// separator in `id + separator` is the appended one.
    pub fn check_server_id(&self, id: &str) -> Result<(), NamingError> {
        if id.is_empty() {
            return Err(NamingError::EmptyServerId);
        }
        if !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(NamingError::BadServerId(id.to_owned()));
        }
        let joined = self.join(id, "");
        if joined.find(&self.separator) != Some(id.len()) {
            return Err(NamingError::AmbiguousServerId {
                id: id.to_owned(),
                separator: self.separator.clone(),
            });
        }
        Ok(())
    }

    /// `server` + separator + `name`.
    pub fn join(&self, server: &str, name: &str) -> String {
        let mut out = String::with_capacity(server.len() + self.separator.len() + name.len());
        out.push_str(server);
        out.push_str(&self.separator);
        out.push_str(name);
        out
    }

    /// Splits an exposed name at the first separator into `(server, name)`.
    pub fn split<'a>(&self, exposed: &'a str) -> Option<(&'a str, &'a str)> {
        let idx = exposed.find(&self.separator)?;
        Some((&exposed[..idx], &exposed[idx + self.separator.len()..]))
    }
}

/// The longest tool name that clients accept everywhere (several refuse
/// longer ones).
pub const MAX_TOOL_NAME: usize = 64;

/// Whether `name` is at most [`MAX_TOOL_NAME`] characters of
/// `[A-Za-z0-9_-]`, the form every client accepts.
pub fn is_portable_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TOOL_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A portable alias for a tool name that is not portable: the name with
/// every other character replaced by `_`, cut to leave room, then `_` and 8
/// hex digits of a hash of the whole name (and `salt`, which the catalog
/// bumps on the rare clash). Deterministic: the same name always gets the
/// same alias, across runs and versions.
pub fn tool_alias(name: &str, salt: u32) -> String {
    const HASH_LEN: usize = 9; // '_' + 8 hex digits
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_TOOL_NAME - HASH_LEN)
        .collect();
    let mut hash = fnv1a(name.as_bytes());
    if salt > 0 {
        hash = fnv1a_continue(hash, &salt.to_le_bytes());
    }
    // Fold the 64-bit hash to 32 bits for 8 hex digits.
    let folded = (hash ^ (hash >> 32)) & 0xffff_ffff;
    out.push_str(&format!("_{folded:08x}"));
    out
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_continue(FNV_OFFSET, bytes)
}

fn fnv1a_continue(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

#[cfg(test)]
mod tests;
