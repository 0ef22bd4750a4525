//! Checking an audit trail: `only1mcp audit verify FILE...`.
//!
//! The files are read in the order given (a rotated series oldest first:
//! `audit.jsonl.3 audit.jsonl.2 audit.jsonl.1 audit.jsonl`) as one chain.
//! The first line that breaks it is named, with why: its content no longer
//! matches its hash (changed), its `prev` is not the hash of the line
//! before although that line is intact (the line before was changed and
//! its hash recomputed), its `seq` skips ahead (lines removed) or is out of
//! order (lines reordered), or it is not a line of the trail at all.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};

use super::chain::{self, GENESIS, Link};

/// A chain that holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// How many lines were read.
    pub lines: u64,
    /// The `seq` of the first and of the last line (`None` if there was no
    /// line).
    pub seqs: Option<(u64, u64)>,
    /// Whether the first line starts a chain (`seq` 1, `prev` zeros);
    /// otherwise it continues one from an earlier (rotated) file that was
    /// not given, and its own link to it is not checked.
    pub starts_chain: bool,
}

/// Where a line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The file.
    pub file: PathBuf,
    /// Its line number (1-based).
    pub line: u64,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// The first place the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Broken {
    /// Not a line of the trail (no hash, not JSON, or torn).
    #[error("line {at} is not an audit line ({why})")]
    Malformed {
        /// The line.
        at: Place,
        /// Why.
        why: chain::Malformed,
    },
    /// Its content does not match its hash.
    #[error("line {at} was changed: its content does not match its hash")]
    Changed {
        /// The line.
        at: Place,
    },
    /// It is intact, but the next line names another hash as its `prev`:
    /// it was changed and its hash recomputed (or replaced).
    #[error(
        "line {at} was changed and its hash recomputed: line {next} names another hash as the one before it"
    )]
    Rehashed {
        /// The line.
        at: Place,
        /// The line after it.
        next: Place,
    },
    /// Lines are missing before it.
    #[error("line(s) removed before line {at}: seq {expected} should come before seq {found}")]
    Removed {
        /// The line after the gap.
        at: Place,
        /// The seq that should be there.
        expected: u64,
        /// The seq found.
        found: u64,
    },
    /// It is out of order.
    #[error("line {at} is out of order: it has seq {found} where seq {expected} belongs{}", elsewhere.as_ref().map(|p| format!(" (seq {expected} is at line {p})")).unwrap_or_default())]
    Reordered {
        /// The line.
        at: Place,
        /// The seq that belongs there.
        expected: u64,
        /// The seq found.
        found: u64,
        /// Where the seq that belongs there is.
        elsewhere: Option<Place>,
    },
}

struct Entry {
    at: Place,
    link: Result<Link, chain::Malformed>,
}

/// Checks `files` as one chain, in the order given.
pub fn verify(files: &[PathBuf]) -> std::io::Result<Result<Verified, Broken>> {
    let mut entries = Vec::new();
    for file in files {
        read_file(file, &mut entries)?;
    }
    Ok(check(&entries))
}

fn read_file(file: &Path, entries: &mut Vec<Entry>) -> std::io::Result<()> {
    let reader = std::io::BufReader::new(std::fs::File::open(file)?);
    for (idx, line) in reader.split(b'\n').enumerate() {
        let line = line?;
        let text = String::from_utf8_lossy(&line);
        entries.push(Entry {
            at: Place {
                file: file.to_owned(),
                line: idx as u64 + 1,
            },
            link: chain::read(&text),
        });
    }
    Ok(())
}

fn check(entries: &[Entry]) -> Result<Verified, Broken> {
    let mut before: Option<(&Entry, &Link)> = None;
    let mut first_seq = None;
    let mut starts_chain = false;
    for (idx, entry) in entries.iter().enumerate() {
        let link = match &entry.link {
            Ok(link) => link,
            Err(why) => {
                return Err(Broken::Malformed {
                    at: entry.at.clone(),
                    why: why.clone(),
                });
            }
        };
        if !link.intact {
            return Err(Broken::Changed {
                at: entry.at.clone(),
            });
        }
        match before {
            None => {
                first_seq = Some(link.seq);
                starts_chain = link.seq == 1 && link.prev == GENESIS;
            }
            Some((prev_entry, prev)) => {
                let expected = prev.seq + 1;
                if link.seq > expected {
                    let elsewhere = find_seq(&entries[idx + 1..], expected);
                    return Err(match elsewhere {
                        Some(elsewhere) => Broken::Reordered {
                            at: entry.at.clone(),
                            expected,
                            found: link.seq,
                            elsewhere: Some(elsewhere),
                        },
                        None => Broken::Removed {
                            at: entry.at.clone(),
                            expected,
                            found: link.seq,
                        },
                    });
                }
                if link.seq < expected {
                    return Err(Broken::Reordered {
                        at: entry.at.clone(),
                        expected,
                        found: link.seq,
                        elsewhere: find_seq(&entries[idx + 1..], expected),
                    });
                }
                if link.prev != prev.hash {
                    return Err(Broken::Rehashed {
                        at: prev_entry.at.clone(),
                        next: entry.at.clone(),
                    });
                }
            }
        }
        before = Some((entry, link));
    }
    Ok(Verified {
        lines: entries.len() as u64,
        seqs: first_seq.zip(before.map(|(_, link)| link.seq)),
        starts_chain,
    })
}

fn find_seq(entries: &[Entry], seq: u64) -> Option<Place> {
    entries
        .iter()
        .find(|e| e.link.as_ref().is_ok_and(|l| l.seq == seq))
        .map(|e| e.at.clone())
}
