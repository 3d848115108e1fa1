//! A thread that copies a SQLite database's write-ahead log back into the database when asked.
//!
//! A bulk writer (a restore, a move's copy) turns SQLite's automatic checkpoint off on its
//! connection (`wal_autocheckpoint = 0`) and asks this thread after each commit instead. The
//! automatic checkpoint runs inside the commit that finds the log over 1,000 pages, which for
//! such writers is nearly every commit: it took a sixth of a restore's time on the writer's
//! thread. A `PASSIVE` checkpoint never waits for the writer; what it cannot copy now, the
//! next request copies. The store's other connections still checkpoint as they commit.

use std::sync::mpsc;

pub(crate) struct Checkpointer {
    wake: mpsc::SyncSender<()>,
}

impl Checkpointer {
    /// Starts the thread on its own connection to the database at `path`. The thread ends when
    /// the `Checkpointer` is dropped.
    pub(crate) fn start(path: &str) -> std::io::Result<Self> {
        let (wake, requests) = mpsc::sync_channel::<()>(1);
        let path = path.to_string();
        std::thread::Builder::new()
            .name("kontor-checkpoint".into())
            .spawn(move || {
                let conn = match rusqlite::Connection::open(&path) {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(error = %e, "the checkpoint thread could not open the database");
                        return;
                    }
                };
                while requests.recv().is_ok() {
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!(error = %e, "a checkpoint failed");
                    }
                }
            })?;
        Ok(Self { wake })
    }

    /// Asks for a checkpoint; a request already pending covers this one. `false` when the
    /// thread has ended.
    pub(crate) fn request(&self) -> bool {
        !matches!(
            self.wake.try_send(()),
            Err(mpsc::TrySendError::Disconnected(()))
        )
    }
}
