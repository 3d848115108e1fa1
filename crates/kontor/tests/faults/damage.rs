//! The campaign's second part: damaged copies of the archives the server wrote.

use super::{archive, Campaign};
use crate::common::kontor;
use rand::Rng;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

/// Damaged copies also checked with `kontor backup verify` (every n-th) and by asking the
/// server for a restore plan from them (the first n).
const CLI_EVERY: usize = 20;
const SERVER_TRIALS: usize = 6;

type Rows = Vec<(String, Vec<(i64, Vec<String>)>)>;

/// Every row of every file an archive's manifest lists, all columns.
fn all_rows(
    path: &Path,
    manifest: &kontor_archive::Manifest,
) -> kontor_archive::ArchiveResult<Rows> {
    let mut out = Vec::new();
    for f in &manifest.files {
        let columns: Vec<String> = f.properties.iter().map(|p| p.name.clone()).collect();
        let mut rows = Vec::new();
        kontor_archive::read_rows(path, &f.name, &columns, |id, v| {
            rows.push((id, v.iter().map(|s| s.to_string()).collect()));
            Ok(true)
        })?;
        out.push((f.name.clone(), rows));
    }
    Ok(out)
}

impl Campaign {
    /// Damages copies of the archives: each must be found, or be harmless.
    pub(super) async fn flip_phase(&mut self, trials: usize) {
        let dir = self.s.data_dir.join("damaged");
        std::fs::create_dir_all(&dir).unwrap();
        let mut originals = BTreeMap::new();
        for id in &self.backups {
            let path = archive(&self.s, &self.account, id);
            let v = kontor_archive::verify(&path).unwrap();
            let rows = all_rows(&path, &v.manifest).unwrap();
            originals.insert(
                id.clone(),
                (std::fs::read(&path).unwrap(), v.manifest, rows),
            );
        }
        let ids: Vec<String> = originals.keys().cloned().collect();
        for trial in 0..trials {
            let id = &ids[self.rng.gen_range(0..ids.len())];
            let (good, manifest, rows) = &originals[id];
            let mut bad = good.clone();
            let what = if self.rng.gen_bool(0.8) {
                let at = self.rng.gen_range(0..bad.len());
                bad[at] ^= 1 << self.rng.gen_range(0..8);
                self.t.flips += 1;
                format!("bit flip at byte {at}")
            } else {
                bad.truncate(self.rng.gen_range(0..bad.len()));
                self.t.cuts += 1;
                format!("truncation to {} bytes", bad.len())
            };
            let copy = dir.join(format!("trial-{trial}.zip"));
            std::fs::write(&copy, &bad).unwrap();
            let found = match kontor_archive::verify(&copy) {
                Err(_) => true,
                Ok(v) => {
                    let same = v.manifest == *manifest
                        && all_rows(&copy, &v.manifest).is_ok_and(|r| r == *rows);
                    if !same {
                        self.t.problems.push(format!(
                            "backup {id}, {what}: verifies but reads back other rows"
                        ));
                    }
                    false
                }
            };
            if found {
                self.t.detected += 1;
            } else {
                self.t.harmless += 1;
            }
            // What a user runs on a downloaded file.
            if trial % CLI_EVERY == 0 {
                let out = kontor(&self.s.data_dir)
                    .args(["backup", "verify"])
                    .arg(&copy)
                    .output()
                    .unwrap();
                self.t.cli_checked += 1;
                if out.status.code() != Some(if found { 1 } else { 0 }) {
                    self.t.problems.push(format!(
                        "backup {id}, {what}: kontor backup verify exits {:?}",
                        out.status.code()
                    ));
                }
            }
            // The server's own restore, from the damaged file in the archive's place.
            if trial < SERVER_TRIALS {
                self.server_trial(id, &bad, good, found, &what).await;
            }
            std::fs::remove_file(&copy).unwrap();
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    async fn server_trial(&mut self, id: &str, bad: &[u8], good: &[u8], found: bool, what: &str) {
        let path = archive(&self.s, &self.account, id);
        std::fs::write(&path, bad).unwrap();
        let (st, e) = self
            .s
            .call(
                &self.operator,
                "POST",
                "/kontor/v1/restores/plans",
                Some(json!({"backupId": id, "objectType": "contacts", "properties": ["city"]})),
            )
            .await;
        std::fs::write(&path, good).unwrap();
        self.t.server_checked += 1;
        if st == 400
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("failed its check"))
        {
            self.t.server_refused += 1;
        } else if found || st != 201 {
            self.t.problems.push(format!(
                "backup {id}, {what}: a restore plan from it answers {st}: {e}"
            ));
        }
    }
}
