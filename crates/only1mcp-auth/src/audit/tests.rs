use std::path::{Path, PathBuf};

use only1mcp_core::config::AuditConfig;
use only1mcp_core::config::audit::AuditArgumentsConfig;
use serde_json::value::RawValue;

use super::verify::{Broken, verify};
use super::*;

fn config(file: &Path) -> AuditConfig {
    AuditConfig {
        file: Some(file.to_owned()),
        ..AuditConfig::default()
    }
}

fn call(target: &str) -> Event {
    let mut event = Event::new(Kind::Call);
    event.target = Some(target.to_owned());
    event.decision = Some(Decision::Allow);
    event
}

/// Writes `n` call lines (plus start and stop) and returns the file's lines.
fn trail(file: &Path, n: usize) -> Vec<String> {
    let auditor = Auditor::open(&config(file)).unwrap().unwrap();
    for idx in 0..n {
        auditor.record(call(&format!("tool{idx}")));
    }
    auditor.close();
    read_lines(file)
}

fn read_lines(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(file: &Path, lines: &[String]) {
    std::fs::write(file, lines.join("\n") + "\n").unwrap();
}

fn check(files: &[PathBuf]) -> Result<verify::Verified, Broken> {
    verify(files).unwrap()
}

#[test]
fn a_line_reads_back_as_the_link_it_was_written_as() {
    let head = chain::Head::genesis();
    let (line, next) = chain::line(&head, SystemTime::UNIX_EPOCH, &call("fs__read"));
    assert!(line.ends_with("\"}\n"));
    assert!(line.starts_with(r#"{"time":"1970-01-01T00:00:00.000Z","seq":1,"event":"call""#));
    let link = chain::read(line.trim_end()).unwrap();
    assert_eq!((link.seq, link.prev.as_str()), (1, chain::GENESIS));
    assert_eq!(link.hash, next.hash);
    assert!(link.intact);
    let changed = line.trim_end().replace("fs__read", "fs__rm");
    assert!(!chain::read(&changed).unwrap().intact);
}

#[test]
fn an_untouched_trail_verifies_from_start_to_stop() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let lines = trail(&file, 5);
    assert_eq!(lines.len(), 7, "start, five calls, stop");
    assert!(lines[0].contains(r#""event":"start""#));
    assert!(lines[6].contains(r#""event":"stop""#));
    let verified = check(&[file]).unwrap();
    assert_eq!(verified.lines, 7);
    assert_eq!(verified.seqs, Some((1, 7)));
    assert!(verified.starts_chain);
}

#[test]
fn verify_names_a_changed_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let mut lines = trail(&file, 5);
    lines[3] = lines[3].replace("tool2", "tool9");
    write_lines(&file, &lines);
    let broken = check(std::slice::from_ref(&file)).unwrap_err();
    assert!(
        matches!(&broken, Broken::Changed { at } if at.line == 4),
        "{broken}"
    );
}

#[test]
fn verify_names_a_line_changed_with_its_hash_recomputed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let mut lines = trail(&file, 5);
    // Rewrite line 3 as a forger would: new content, its own hash redone.
    let link = chain::read(&lines[1]).unwrap();
    let head = chain::Head {
        seq: link.seq,
        hash: link.hash,
    };
    let (forged, _) = chain::line(&head, SystemTime::now(), &call("innocent"));
    lines[2] = forged.trim_end().to_owned();
    write_lines(&file, &lines);
    let broken = check(std::slice::from_ref(&file)).unwrap_err();
    assert!(
        matches!(&broken, Broken::Rehashed { at, next } if at.line == 3 && next.line == 4),
        "{broken}"
    );
}

#[test]
fn verify_names_where_a_line_was_removed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let mut lines = trail(&file, 5);
    lines.remove(2);
    write_lines(&file, &lines);
    let broken = check(std::slice::from_ref(&file)).unwrap_err();
    assert!(
        matches!(&broken, Broken::Removed { at, expected: 3, found: 4 } if at.line == 3),
        "{broken}"
    );
}

#[test]
fn verify_names_reordered_lines() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let mut lines = trail(&file, 5);
    lines.swap(2, 3);
    write_lines(&file, &lines);
    let broken = check(std::slice::from_ref(&file)).unwrap_err();
    assert!(
        matches!(&broken, Broken::Reordered { at, expected: 3, found: 4, elsewhere: Some(e) } if at.line == 3 && e.line == 4),
        "{broken}"
    );
}

#[test]
fn a_restart_continues_the_chain_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    trail(&file, 2);
    let lines = trail(&file, 2);
    assert_eq!(lines.len(), 8);
    assert!(
        lines[4].contains(r#""seq":5,"event":"start""#),
        "{}",
        lines[4]
    );
    assert!(check(&[file]).unwrap().starts_chain);
}

#[test]
fn rotation_continues_the_chain_in_the_next_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let auditor = Auditor::open(&AuditConfig {
        max_file_bytes: 4096,
        max_files: 3,
        ..config(&file)
    })
    .unwrap()
    .unwrap();
    for idx in 0..100 {
        auditor.record(call(&format!("tool{idx}")));
    }
    auditor.close();
    let rotated = |idx| writer::rotated_name(&file, idx);
    assert!(
        rotated(3).exists() && !rotated(4).exists(),
        "three rotated files kept"
    );
    for path in [rotated(1), rotated(2), rotated(3), file.clone()] {
        assert!(std::fs::metadata(&path).unwrap().len() <= 4096);
    }
    // The newest file alone continues a chain it cannot check the start of;
    // the series, oldest first, holds together.
    let alone = check(std::slice::from_ref(&file)).unwrap();
    assert!(!alone.starts_chain);
    let series = check(&[rotated(3), rotated(2), rotated(1), file.clone()]).unwrap();
    assert_eq!(series.seqs.unwrap().1, 102, "start, 100 calls, stop");
    // Out of order, the series breaks at the first file's first line.
    let swapped = check(&[rotated(2), rotated(3), rotated(1), file]).unwrap_err();
    assert!(matches!(swapped, Broken::Reordered { .. }), "{swapped}");
}

#[test]
fn a_full_queue_drops_events_and_the_trail_says_how_many() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let auditor = Auditor::open(&AuditConfig {
        queue: 16,
        fsync: only1mcp_core::config::audit::FsyncPolicy::Always,
        ..config(&file)
    })
    .unwrap()
    .unwrap();
    // Far more than the queue holds, as fast as possible: some are dropped.
    for idx in 0..20_000 {
        auditor.record(call(&format!("tool{idx}")));
    }
    let dropped = auditor.dropped();
    auditor.close();
    assert!(
        dropped > 0,
        "the writer kept up with 20000 events through a queue of 16"
    );
    let lines = read_lines(&file);
    let noted: u64 = lines
        .iter()
        .filter(|l| l.contains(r#""event":"dropped""#))
        .map(|l| {
            let value: serde_json::Value = serde_json::from_str(l).unwrap();
            let detail = value["detail"].as_str().unwrap().to_owned();
            detail.split(' ').next().unwrap().parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(noted, dropped, "every drop is recorded");
    let calls = lines
        .iter()
        .filter(|l| l.contains(r#""event":"call""#))
        .count() as u64;
    assert_eq!(calls + dropped, 20_000);
    assert!(check(&[file]).is_ok());
}

#[test]
fn arguments_are_kept_hashed_or_redacted_by_glob() {
    let rules = Arguments::new(&AuditArgumentsConfig {
        include: vec!["query".into(), "options.*".into()],
        hash: vec!["user".into()],
        redact: vec!["**.password".into(), "options.token".into()],
    })
    .unwrap();
    let params = RawValue::from_string(
        r#"{"name":"t","arguments":{"query":"q","user":"ana","secret":"s","password":"p","options":{"depth":2,"token":"x","nested":{"password":"y"}}}}"#
            .to_owned(),
    )
    .unwrap();
    let kept = rules.apply(&params).unwrap();
    assert_eq!(kept["query"], "q");
    assert_eq!(
        kept["user"],
        format!("sha256:{}", chain::sha256_hex(b"\"ana\""))
    );
    assert!(kept.get("secret").is_none(), "not named: left out");
    assert_eq!(kept["password"], "[redacted]");
    assert_eq!(kept["options"]["depth"], 2);
    assert_eq!(kept["options"]["token"], "[redacted]");
    assert_eq!(kept["options"]["nested"]["password"], "[redacted]");
}
