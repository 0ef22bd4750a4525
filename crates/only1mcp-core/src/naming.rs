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

/// A validated separator.
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

#[cfg(test)]
mod tests;
