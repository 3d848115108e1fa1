//! The server's keys on disk (or in the environment), and their rotation.
//!
//! - current: `KONTOR_SECRET_KEY`, else `secret_key_file` (created, 0600, on first start);
//! - previous: `KONTOR_PREVIOUS_SECRET_KEYS` (comma-separated), else `<secret_key_file>.previous`
//!   (one key a line), when present. Previous keys only open and verify (see
//!   `kontor_jobs::keys`).
//!
//! `kontor admin key rotate` makes a new key, seals every sealed value again under it and only
//! then puts it in place, keeping the old one as previous so that download links already sent
//! work until they expire. The new key is written to `<secret_key_file>.next` first: a rotation
//! cut short is finished by running the command again, which takes that key up.

use crate::config::Config;
use anyhow::{Context, Result};
use kontor_jobs::keys::{self, Key, Keyring};
use std::path::{Path, PathBuf};

fn parse(hex: &str, from: &str) -> Result<Key> {
    keys::from_hex(hex).with_context(|| format!("{from}: a key must be 64 hex digits"))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

fn previous_file(config: &Config) -> PathBuf {
    with_suffix(&config.secret_key_file, ".previous")
}

fn next_file(config: &Config) -> PathBuf {
    with_suffix(&config.secret_key_file, ".next")
}

/// Reads a key file, refusing one that others can read.
fn read_key_file(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            crate::private_files::check_key_file(path)?;
            Ok(Some(text))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes `text` to `path` atomically (a temporary file renamed over it), mode 0600.
fn write_key_file(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = with_suffix(path, ".tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::io::Write::write_all(&mut f, text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn load_previous(config: &Config) -> Result<Vec<Key>> {
    if let Ok(list) = std::env::var("KONTOR_PREVIOUS_SECRET_KEYS") {
        return list
            .split(',')
            .filter(|k| !k.trim().is_empty())
            .map(|k| parse(k, "KONTOR_PREVIOUS_SECRET_KEYS"))
            .collect();
    }
    let path = previous_file(config);
    let Some(text) = read_key_file(&path)? else {
        return Ok(Vec::new());
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| parse(l, &path.display().to_string()))
        .collect()
}

/// The keyring in force. Without a key anywhere, one is made and saved (first start).
pub fn load(config: &Config) -> Result<Keyring> {
    let previous = load_previous(config)?;
    if let Ok(hex) = std::env::var("KONTOR_SECRET_KEY") {
        return Ok(Keyring::new(parse(&hex, "KONTOR_SECRET_KEY")?, previous));
    }
    let path = &config.secret_key_file;
    if let Some(text) = read_key_file(path)? {
        return Ok(Keyring::new(
            parse(&text, &path.display().to_string())?,
            previous,
        ));
    }
    let key = keys::generate();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(path) {
        Ok(mut f) => std::io::Write::write_all(&mut f, keys::to_hex(&key).as_bytes())
            .with_context(|| format!("writing {}", path.display()))?,
        // Another process made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path)?;
            return Ok(Keyring::new(
                parse(&text, &path.display().to_string())?,
                previous,
            ));
        }
        Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
    }
    Ok(Keyring::new(key, previous))
}

/// Seals every sealed value of every database again under `ring`'s current key.
/// Returns (resealed, unreadable).
pub async fn reseal(dir: &kontor_store::Directory, ring: &Keyring) -> Result<(usize, usize)> {
    // The cells hold the sealed values; regions sharing one database are visited once.
    let mut stores: Vec<&kontor_store::Store> = Vec::new();
    for s in dir.regions.values() {
        if !stores.iter().any(|o| o.same_database(s)) {
            stores.push(s);
        }
    }
    let (mut done, mut unreadable) = (0, 0);
    for store in stores {
        let (d, u) = store
            .reseal_secrets(|sealed| {
                kontor_server::seal::open(ring, sealed)
                    .map(|plain| kontor_server::seal::seal(ring, &plain))
            })
            .await?;
        done += d;
        unreadable += u;
    }
    Ok((done, unreadable))
}

/// `kontor admin key rotate`.
pub async fn rotate(dir: &kontor_store::Directory, config: &Config) -> Result<()> {
    anyhow::ensure!(
        std::env::var("KONTOR_SECRET_KEY").is_err(),
        "the key comes from KONTOR_SECRET_KEY: set a new one there, add the old one to \
         KONTOR_PREVIOUS_SECRET_KEYS, and run `kontor admin key reseal`"
    );
    let old = load(config)?;
    let next_path = next_file(config);
    let new = match read_key_file(&next_path)? {
        Some(text) => {
            eprintln!(
                "finishing the rotation begun earlier (found {})",
                next_path.display()
            );
            parse(&text, &next_path.display().to_string())?
        }
        None => {
            let key = keys::generate();
            write_key_file(&next_path, &keys::to_hex(&key))?;
            key
        }
    };
    let mut previous = vec![*old.current_master()];
    previous.extend(
        old.previous_masters()
            .iter()
            .filter(|k| **k != new && **k != *old.current_master()),
    );
    previous.retain(|k| *k != new);
    let ring = Keyring::new(new, previous.clone());
    let (done, unreadable) = reseal(dir, &ring).await?;
    // The order makes a cut-short rotation safe: the previous file first (the old key stays
    // accepted), then the new key over the current one, then the marker goes.
    let prev_text: String = previous.iter().map(|k| keys::to_hex(k) + "\n").collect();
    write_key_file(&previous_file(config), &prev_text)?;
    write_key_file(&config.secret_key_file, &keys::to_hex(&new))?;
    std::fs::remove_file(&next_path)?;
    out!("rotated the server key: {done} sealed values sealed again under the new key");
    if unreadable > 0 {
        out!("{unreadable} sealed values could not be opened with any known key and were left as they were");
    }
    out!(
        "the old key is kept in {} for download links already sent (they expire within 14 days); \
         every node must now use the new {} and {}",
        previous_file(config).display(),
        config.secret_key_file.display(),
        previous_file(config).display()
    );
    tracing::info!(resealed = done, unreadable, "server key rotated");
    Ok(())
}

/// `kontor admin key reseal`: after the operator changed the key by hand (environment).
pub async fn reseal_command(dir: &kontor_store::Directory, config: &Config) -> Result<()> {
    let ring = load(config)?;
    let (done, unreadable) = reseal(dir, &ring).await?;
    out!("{done} sealed values sealed again under the current key");
    if unreadable > 0 {
        out!("{unreadable} sealed values could not be opened with any known key and were left as they were");
    }
    Ok(())
}
