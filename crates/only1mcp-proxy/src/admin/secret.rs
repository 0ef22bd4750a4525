//! The admin API's token when none is configured: drawn at start from the
//! OS's random source, written to a file only the gateway's user can read,
//! and read from there by the management commands of the same user
//! (ADR 0011).
//!
//! The file is `<runtime dir>/admin-<port>.token`, one per admin port, so
//! gateways on other ports keep their own. The runtime dir is
//! `ONLY1MCP_RUNTIME_DIR` if set, else `only1mcp` in the user's runtime
//! directory (`$XDG_RUNTIME_DIR`), else in the user's state directory
//! (`$XDG_STATE_HOME`, `~/.local/state`), else in the local data directory
//! (`~/Library/Application Support` on macOS, `%LOCALAPPDATA%` on Windows).
//! On Unix the directory is made `0700` and the file is created `0600`
//! under a random name (`O_EXCL`) and renamed into place, so no other user
//! reads it and a planted file or symlink is replaced, never followed.
//! The file is removed when the admin API stops.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom as _, SystemRandom};

/// The environment variable that names the directory of the token files.
pub const RUNTIME_DIR_ENV: &str = "ONLY1MCP_RUNTIME_DIR";

/// Bytes of randomness in a generated token (written as hex).
const TOKEN_BYTES: usize = 32;

/// The directory of the token files (see the module docs), if the platform
/// names one.
pub fn runtime_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(RUNTIME_DIR_ENV).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    dirs::runtime_dir()
        .or_else(dirs::state_dir)
        .or_else(dirs::data_local_dir)
        .map(|dir| dir.join("only1mcp"))
}

/// The token file of the admin API on `port`, in `dir`.
pub fn token_path(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!("admin-{port}.token"))
}

/// A new random token: 64 hex digits.
pub fn generate() -> std::io::Result<String> {
    let mut bytes = [0_u8; TOKEN_BYTES];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| std::io::Error::other("the OS's random source failed"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Reads the token of the admin API on `port` from the runtime directory.
pub fn read(port: u16) -> std::io::Result<(String, PathBuf)> {
    let dir = runtime_dir().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no runtime directory on this platform",
        )
    })?;
    let path = token_path(&dir, port);
    let token = std::fs::read_to_string(&path)?.trim().to_owned();
    Ok((token, path))
}

/// A written token file; dropping it removes the file (if it still holds
/// this token, so a newer gateway's file on the same port is kept).
#[derive(Debug)]
pub struct TokenFile {
    path: PathBuf,
    token: String,
}

impl TokenFile {
    /// Writes `token` as the token of the admin API on `port`, in `dir`
    /// (made private to the user; see [`runtime_dir`]).
    pub fn write(dir: &Path, port: u16, token: &str) -> std::io::Result<Self> {
        private_dir(dir)?;
        let path = token_path(dir, port);
        // `tempfile` creates the file with O_EXCL under a random name, mode
        // 0600 on Unix; the rename replaces whatever was at `path` (a
        // symlink included) without following it.
        let mut file = tempfile::Builder::new()
            .prefix(".admin-")
            .suffix(".tmp")
            .tempfile_in(dir)?;
        file.write_all(token.as_bytes())?;
        file.write_all(b"\n")?;
        file.as_file().sync_all()?;
        file.persist(&path).map_err(|e| e.error)?;
        Ok(Self {
            path,
            token: token.to_owned(),
        })
    }

    /// Where the token is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TokenFile {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.path).is_ok_and(|text| text.trim() == self.token);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Creates `dir` (and its parents) and makes it private to the user.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_long_and_differ() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[cfg(unix)]
    #[test]
    fn the_token_file_is_private_replaces_a_planted_symlink_and_goes_on_drop() {
        use std::os::unix::fs::PermissionsExt as _;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("run");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Someone planted a symlink where the token goes.
        let victim = root.path().join("victim");
        std::fs::write(&victim, "keep me").unwrap();
        std::os::unix::fs::symlink(&victim, token_path(&dir, 7332)).unwrap();

        let file = TokenFile::write(&dir, 7332, "t0ken").unwrap();
        assert_eq!(file.path(), token_path(&dir, 7332));
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        let meta = std::fs::symlink_metadata(file.path()).unwrap();
        assert!(meta.is_file(), "the symlink was replaced by a file");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let dir_mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        assert_eq!(std::fs::read_to_string(file.path()).unwrap(), "t0ken\n");

        // A newer gateway on the same port wrote its own: the old one's drop
        // keeps it.
        let newer = TokenFile::write(&dir, 7332, "newer").unwrap();
        drop(file);
        assert!(newer.path().exists());
        drop(newer);
        assert!(!token_path(&dir, 7332).exists());
    }
}
