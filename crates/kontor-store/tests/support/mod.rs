//! What the store's test suites share: a fresh SQLite directory of cells per test.

use kontor_domain::Region;
use kontor_store::{Directory, Store};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A test's folder of databases: removed when the test passes, kept when it fails (to look
/// into).
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(prefix: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst),
            kontor_domain::time::now_ms()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A directory and its two region cells, each a SQLite database in a new folder.
pub async fn sqlite_directory(prefix: &str) -> (Directory, Scratch) {
    let scratch = Scratch::new(prefix);
    let url = |name: &str| format!("sqlite://{}", scratch.0.join(name).display());
    let directory = Directory {
        directory: Store::open(&url("directory.db")).await.unwrap(),
        regions: HashMap::from([
            (Region::Us, Store::open(&url("us.db")).await.unwrap()),
            (Region::Eu, Store::open(&url("eu.db")).await.unwrap()),
        ]),
    };
    (directory, scratch)
}
