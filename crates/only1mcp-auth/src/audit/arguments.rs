//! What an audit record keeps of a call's arguments (`audit.arguments`):
//! fields picked by glob over their dotted paths, kept, hashed or redacted.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use only1mcp_core::config::audit::AuditArgumentsConfig;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::Error;

/// The compiled `audit.arguments` rules.
#[derive(Debug)]
pub struct Arguments {
    include: GlobSet,
    hash: GlobSet,
    redact: GlobSet,
}

/// How deep into nested objects fields are looked at.
const MAX_DEPTH: usize = 16;

impl Arguments {
    /// Compiles `config`'s globs (a `.` in a glob separates path segments,
    /// as it does in a field's path).
    pub fn new(config: &AuditArgumentsConfig) -> Result<Self, Error> {
        Ok(Self {
            include: set(&config.include)?,
            hash: set(&config.hash)?,
            redact: set(&config.redact)?,
        })
    }

    /// What a record keeps of the `arguments` of `params` (`None`: nothing,
    /// or no arguments).
    pub fn apply(&self, params: &RawValue) -> Option<Value> {
        #[derive(serde::Deserialize)]
        struct Params {
            arguments: Option<Map<String, Value>>,
        }
        let arguments = serde_json::from_str::<Params>(params.get())
            .ok()?
            .arguments?;
        let kept = self.filter(&arguments, "", 0, false);
        (!kept.is_empty()).then_some(Value::Object(kept))
    }

    /// The fields of `object` (at `prefix`) a record keeps; `included`: an
    /// enclosing object was matched by `include`, so everything in it is
    /// kept but what `redact` and `hash` match.
    fn filter(
        &self,
        object: &Map<String, Value>,
        prefix: &str,
        depth: usize,
        included: bool,
    ) -> Map<String, Value> {
        let mut kept = Map::new();
        for (key, value) in object {
            // Segments are joined with `/`, the separator globset knows.
            let segment = key.replace('/', "\u{2215}");
            let path = if prefix.is_empty() {
                segment
            } else {
                format!("{prefix}/{segment}")
            };
            if self.redact.is_match(&path) {
                kept.insert(key.clone(), Value::String("[redacted]".to_owned()));
            } else if self.hash.is_match(&path) {
                let text = serde_json::to_string(value).unwrap_or_default();
                let hash = super::chain::sha256_hex(text.as_bytes());
                kept.insert(key.clone(), Value::String(format!("sha256:{hash}")));
            } else {
                let included = included || self.include.is_match(&path);
                match value {
                    Value::Object(inner) if depth < MAX_DEPTH => {
                        let inner = self.filter(inner, &path, depth + 1, included);
                        if included || !inner.is_empty() {
                            kept.insert(key.clone(), Value::Object(inner));
                        }
                    }
                    // Deeper than that: kept whole only if included.
                    _ if included => {
                        kept.insert(key.clone(), value.clone());
                    }
                    _ => {}
                }
            }
        }
        kept
    }
}

fn set(patterns: &[String]) -> Result<GlobSet, Error> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = GlobBuilder::new(&pattern.replace('.', "/"))
            .literal_separator(true)
            .build()
            .map_err(|e| Error::BadGlob(e.to_string()))?;
        builder.add(glob);
    }
    builder.build().map_err(|e| Error::BadGlob(e.to_string()))
}
