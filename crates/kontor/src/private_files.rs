//! Everything kontor writes is private to the user it runs as: databases, backup archives,
//! import uploads, outbox e-mails (which hold live download links) and the server key.
//!
//! One mechanism covers every file, whichever library creates it (SQLite its `-wal` and `-shm`
//! files, the zip writer its archives): the process's file-mode mask is set to 077 before
//! anything is opened, so new files are 0600 and new folders 0700. Folders an older version
//! (or an operator) left open to others are closed at start-up; a server key file others can
//! read is refused, as ssh refuses such a private key.

use anyhow::Result;
use std::path::Path;

/// Makes every file and folder this process creates from now on private (0600 / 0700).
pub fn restrict_new_files() {
    #[cfg(unix)]
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
}

/// Closes `folder` to other users if it is open to them; a folder we do not own (a shared
/// mount) is left as it is, with a warning.
pub fn close_folder(folder: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let Ok(meta) = std::fs::metadata(folder) else {
            return Ok(());
        };
        let mode = meta.mode() & 0o777;
        if mode & 0o077 == 0 {
            return Ok(());
        }
        if meta.uid() == nix::unistd::geteuid().as_raw() {
            std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o700))?;
            tracing::warn!(folder = %folder.display(), was = format!("{mode:o}"), "closed the folder to other users (now 700)");
        } else {
            tracing::warn!(folder = %folder.display(), mode = format!("{mode:o}"), "the folder is open to other users and not ours to change: make it 700");
        }
    }
    Ok(())
}

/// Refuses a key file that users other than its owner can read or write.
pub fn check_key_file(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let mode = std::fs::metadata(path)?.mode() & 0o777;
        anyhow::ensure!(
            mode & 0o077 == 0,
            "the server key file {} can be read by other users (mode {mode:o}): run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    Ok(())
}
