//! The `audit:` section: where the tamper-evident audit trail goes and what
//! it keeps of a call's arguments.
//!
//! Auditing is off unless `file` is set or `stdout` is on. Each event is one
//! JSON line chained to the one before it by a SHA-256 hash (ADR 0019); the
//! writing happens on a thread of its own behind a bounded queue, so a slow
//! disk never holds up a call.

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where audit events go.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct AuditConfig {
    /// The audit file (JSON lines, created `0600`, appended to; the chain
    /// continues from its last line after a restart; a relative path is
    /// relative to the config file's folder). None: no file.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Also write each line to stdout (default off; refused when MCP is
    /// served on stdio, where stdout is MCP only).
    #[serde(default)]
    pub stdout: bool,
    /// The file is rotated before a line would make it larger than this
    /// (default 64 MiB, 4 KiB to 64 GiB): it becomes `<file>.1`, older ones
    /// move up by one, and the chain goes on in the new file.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// How many rotated files are kept (`<file>.1` newest to `<file>.N`
    /// oldest; default 10, 1 to 1000); the oldest beyond it is deleted.
    #[serde(default = "default_max_files")]
    pub max_files: u32,
    /// When the file is flushed to the disk (default `interval`).
    #[serde(default)]
    pub fsync: FsyncPolicy,
    /// With `fsync: interval`, how long written lines may wait for their
    /// fsync (default 1s, 10ms to 1h).
    #[serde(default = "default_fsync_interval", with = "humantime_serde")]
    pub fsync_interval: Duration,
    /// How many events may wait for the writer (default 8192, 16 to
    /// 1,048,576). When it is full a new event is not kept: the number
    /// dropped is counted, and the writer records it in a `dropped` line
    /// before its next one, so a gap is never silent. A call never waits
    /// for the audit trail.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// What a `tools/call` record keeps of the arguments (by default
    /// nothing).
    #[serde(default)]
    pub arguments: AuditArgumentsConfig,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            file: None,
            stdout: false,
            max_file_bytes: default_max_file_bytes(),
            max_files: default_max_files(),
            fsync: FsyncPolicy::default(),
            fsync_interval: default_fsync_interval(),
            queue: default_queue(),
            arguments: AuditArgumentsConfig::default(),
        }
    }
}

/// When the audit file is flushed to the disk.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// After every batch of lines the writer takes from its queue (each line
    /// is on disk before the next batch is written; slowest).
    Always,
    /// At most `fsync_interval` after a line was written.
    #[default]
    Interval,
    /// Never: the operating system decides.
    Never,
}

/// Which argument fields of a `tools/call` an audit record keeps, by glob
/// over their dotted paths (`query`, `auth.token`, `*.password`; `*`
/// matches within one segment, `**` across them). A field matched by
/// `redact` is written as `"[redacted]"`, else one matched by `hash` as
/// `"sha256:<hex>"` of its JSON text, else one matched by `include` as it
/// is; any other field is left out. With all three empty (the default) a
/// record has no `arguments` at all.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct AuditArgumentsConfig {
    /// Fields kept as they are.
    #[serde(default)]
    pub include: Vec<String>,
    /// Fields kept as a SHA-256 of their JSON text (comparable across
    /// records; a low-entropy value such as a password can be guessed back
    /// from its hash: redact those).
    #[serde(default)]
    pub hash: Vec<String>,
    /// Fields whose presence is kept, not their value.
    #[serde(default)]
    pub redact: Vec<String>,
}

impl AuditArgumentsConfig {
    /// Whether a record keeps any argument at all.
    pub fn keeps_any(&self) -> bool {
        !(self.include.is_empty() && self.hash.is_empty() && self.redact.is_empty())
    }
}

fn default_max_file_bytes() -> u64 {
    64 * 1024 * 1024
}

fn default_max_files() -> u32 {
    10
}

fn default_fsync_interval() -> Duration {
    Duration::from_secs(1)
}

fn default_queue() -> usize {
    8192
}

const MAX_FILE_BYTES: RangeInclusive<u64> = 4096..=64 * 1024 * 1024 * 1024;
const MAX_FILES: RangeInclusive<u32> = 1..=1000;
const FSYNC_INTERVAL: RangeInclusive<Duration> =
    Duration::from_millis(10)..=Duration::from_secs(3600);
const QUEUE: RangeInclusive<usize> = 16..=1_048_576;

impl AuditConfig {
    /// Whether anything is audited.
    pub fn enabled(&self) -> bool {
        self.file.is_some() || self.stdout
    }

    /// Each field out of its range, as (field, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if !MAX_FILE_BYTES.contains(&self.max_file_bytes) {
            problems.push((
                "audit.max_file_bytes".to_owned(),
                format!(
                    "must be between {} and {}",
                    MAX_FILE_BYTES.start(),
                    MAX_FILE_BYTES.end()
                ),
            ));
        }
        if !MAX_FILES.contains(&self.max_files) {
            problems.push((
                "audit.max_files".to_owned(),
                format!(
                    "must be between {} and {}",
                    MAX_FILES.start(),
                    MAX_FILES.end()
                ),
            ));
        }
        if !FSYNC_INTERVAL.contains(&self.fsync_interval) {
            problems.push((
                "audit.fsync_interval".to_owned(),
                "must be between 10ms and 1h".to_owned(),
            ));
        }
        if !QUEUE.contains(&self.queue) {
            problems.push((
                "audit.queue".to_owned(),
                format!("must be between {} and {}", QUEUE.start(), QUEUE.end()),
            ));
        }
        if self
            .file
            .as_ref()
            .is_some_and(|file| file.as_os_str().is_empty())
        {
            problems.push(("audit.file".to_owned(), "must not be empty".to_owned()));
        }
        let globs = [
            ("include", &self.arguments.include),
            ("hash", &self.arguments.hash),
            ("redact", &self.arguments.redact),
        ];
        for (list, patterns) in globs {
            for (idx, pattern) in patterns.iter().enumerate() {
                if let Err(e) = globset::GlobBuilder::new(pattern)
                    .literal_separator(true)
                    .build()
                {
                    problems.push((format!("audit.arguments.{list}[{idx}]"), e.to_string()));
                }
            }
        }
        problems
    }
}
