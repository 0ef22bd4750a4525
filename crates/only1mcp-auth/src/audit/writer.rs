//! The audit writer thread: takes events off the bounded queue, chains
//! them into lines, writes them to the file (rotating it by size) and to
//! stdout, and syncs the file as `audit.fsync` says.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use only1mcp_core::config::AuditConfig;
use only1mcp_core::config::audit::FsyncPolicy;

use super::chain::{self, Head};
use super::{Error, Event, Kind, Message};

/// The most lines written per batch (one write, one fsync under
/// `fsync: always`).
const BATCH: usize = 256;

/// How much of the end of a file is read to find where its chain stands.
const TAIL: u64 = 256 * 1024;

/// Where lines go, and where the chain stands.
#[derive(Debug)]
pub(super) struct Sink {
    path: Option<PathBuf>,
    file: Option<File>,
    size: u64,
    stdout: bool,
    head: Head,
    max_bytes: u64,
    max_files: u32,
    fsync: FsyncPolicy,
    interval: Duration,
    /// Written but not yet synced.
    unsynced: bool,
    last_sync: Instant,
    /// Lines could not be written since the last success (logged once).
    failing: bool,
}

impl Sink {
    /// Opens the file of `config` (its folder made if missing), and finds
    /// where its chain stands: its last whole line, or the newest rotated
    /// file's if it is empty.
    pub(super) fn open(config: &AuditConfig) -> Result<Self, Error> {
        let (file, size, head) = match &config.file {
            Some(path) => {
                let failed = |source| Error::OpenFailed {
                    path: path.clone(),
                    source,
                };
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(failed)?;
                }
                let mut file = open_append(path).map_err(failed)?;
                // One writer per chain: an advisory lock, held while the
                // file is open (the lock is the open file's, so a rotation
                // takes it again on the new file).
                match file.try_lock() {
                    Ok(()) => {}
                    Err(std::fs::TryLockError::WouldBlock) => {
                        return Err(Error::InUse(path.clone()));
                    }
                    Err(std::fs::TryLockError::Error(e)) => return Err(failed(e)),
                }
                let (size, head) = match last_head(&mut file).map_err(failed)? {
                    (size, Some(head)) => (size, head),
                    (size, None) => {
                        let rotated = rotated_name(path, 1);
                        let head = match File::open(&rotated) {
                            Ok(mut older) => last_head(&mut older).map_err(failed)?.1,
                            Err(_) => None,
                        };
                        (size, head.unwrap_or_else(Head::genesis))
                    }
                };
                (Some(file), size, head)
            }
            None => (None, 0, Head::genesis()),
        };
        Ok(Self {
            path: config.file.clone(),
            file,
            size,
            stdout: config.stdout,
            head,
            max_bytes: config.max_file_bytes,
            max_files: config.max_files,
            fsync: config.fsync,
            interval: config.fsync_interval,
            unsynced: false,
            last_sync: Instant::now(),
            failing: false,
        })
    }

    fn write(&mut self, time: SystemTime, event: &Event) {
        let (line, head) = chain::line(&self.head, time, event);
        self.head = head;
        if self.stdout {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(line.as_bytes());
            let _ = out.flush();
        }
        if self.file.is_none() {
            return;
        }
        let len = line.len() as u64;
        if self.size > 0 && self.size + len > self.max_bytes {
            self.rotate();
        }
        let Some(file) = self.file.as_mut() else {
            return;
        };
        match file.write_all(line.as_bytes()) {
            Ok(()) => {
                self.size += len;
                self.unsynced = true;
                self.failing = false;
            }
            Err(e) => {
                if !self.failing {
                    tracing::error!(error = %e, "Cannot write the audit file; lines are lost until it works again");
                }
                self.failing = true;
            }
        }
    }

    /// `<file>` becomes `<file>.1`, `.1` becomes `.2`, …; the oldest beyond
    /// `max_files` is overwritten. The chain goes on in the new file.
    fn rotate(&mut self) {
        let Some(path) = self.path.clone() else {
            return;
        };
        self.sync();
        self.file = None;
        for idx in (1..self.max_files).rev() {
            let from = rotated_name(&path, idx);
            if from.exists() {
                let _ = std::fs::rename(&from, rotated_name(&path, idx + 1));
            }
        }
        if let Err(e) = std::fs::rename(&path, rotated_name(&path, 1)) {
            tracing::error!(error = %e, "Cannot rotate the audit file");
        }
        match open_append(&path) {
            Ok(file) => {
                let _ = file.try_lock();
                self.file = Some(file);
                self.size = 0;
            }
            Err(e) => tracing::error!(error = %e, "Cannot open a new audit file after rotation"),
        }
    }

    fn sync(&mut self) {
        if let Some(file) = &self.file
            && self.unsynced
            && self.fsync != FsyncPolicy::Never
        {
            let _ = file.sync_data();
        }
        self.unsynced = false;
        self.last_sync = Instant::now();
    }

    /// After a batch: sync as the policy says.
    fn after_batch(&mut self) {
        match self.fsync {
            FsyncPolicy::Always => self.sync(),
            FsyncPolicy::Interval if self.last_sync.elapsed() >= self.interval => self.sync(),
            FsyncPolicy::Interval | FsyncPolicy::Never => {}
        }
    }

    /// How long the writer may wait for the next event before a pending
    /// sync is due.
    fn wait(&self) -> Option<Duration> {
        (self.unsynced && self.fsync == FsyncPolicy::Interval)
            .then(|| self.interval.saturating_sub(self.last_sync.elapsed()))
    }
}

/// The writer: runs until `Message::Stop` or until every sender is gone.
pub(super) fn run(mut sink: Sink, events: &Receiver<Message>, dropped: &AtomicU64) {
    loop {
        let first = match sink.wait() {
            Some(timeout) => match events.recv_timeout(timeout) {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => {
                    sink.sync();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            },
            None => match events.recv() {
                Ok(message) => message,
                Err(_) => break,
            },
        };
        let mut next = Some(first);
        let mut n_written = 0;
        while let Some(message) = next.take() {
            let lost = dropped.swap(0, Ordering::Relaxed);
            if lost > 0 {
                let mut note = Event::new(Kind::Dropped);
                note.detail = Some(format!(
                    "{lost} events were not recorded: the audit queue (audit.queue) was full"
                ));
                sink.write(SystemTime::now(), &note);
            }
            match message {
                Message::Event(time, event) => sink.write(time, &event),
                Message::Stop => {
                    sink.write(SystemTime::now(), &Event::new(Kind::Stop));
                    sink.sync();
                    return;
                }
            }
            n_written += 1;
            if n_written < BATCH {
                next = events.try_recv().ok();
            }
        }
        sink.after_batch();
    }
    sink.sync();
}

fn open_append(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true).read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

/// `<path>.<idx>`.
pub(crate) fn rotated_name(path: &Path, idx: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{idx}"));
    PathBuf::from(name)
}

/// The file's size and the head of its chain: its last line that reads as
/// a link (a torn last line, from a crash mid-write, is skipped: the next
/// line starts on a line of its own and `verify` reports the torn one).
fn last_head(file: &mut File) -> std::io::Result<(u64, Option<Head>)> {
    let size = file.seek(SeekFrom::End(0))?;
    let start = size.saturating_sub(TAIL);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.take(TAIL).read_to_end(&mut tail)?;
    let text = String::from_utf8_lossy(&tail);
    let head = text
        .lines()
        .rev()
        .filter_map(|line| chain::read(line).ok())
        .next()
        .map(|link| Head {
            seq: link.seq,
            hash: link.hash,
        });
    let mut size = size;
    if !tail.is_empty() && tail.last() != Some(&b'\n') {
        // A torn last line: end it, so the next line is a line of its own.
        file.write_all(b"\n")?;
        size += 1;
    }
    Ok((size, head))
}
