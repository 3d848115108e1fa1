//! Reading an archive back and checking all of it against its manifest.

use crate::{hex, ArchiveError, ArchiveResult, Manifest, FORMAT, FORMAT_VERSION, MANIFEST_NAME};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::{Read, Seek};
use std::path::Path;

/// An archive that passed [`verify`].
#[derive(Debug, Clone)]
pub struct Verified {
    pub manifest: Manifest,
    /// Total CSV rows (headers excluded).
    pub rows: u64,
}

const MAX_MANIFEST: u64 = 64 << 20;

/// Checks the archive at `path` entirely: the manifest's format and version, that the zip holds
/// exactly the manifest and the files it lists, and for each file its CRC, its SHA-256, its
/// header (the manifest's property names, `hs_object_id` first), its row count, that every
/// row has every column, that it is UTF-8, and that record ids ascend.
pub fn verify(path: &Path) -> ArchiveResult<Verified> {
    verify_reader(std::fs::File::open(path)?)
}

/// Reads an archive's manifest and checks its format, without reading the CSV files (for an
/// archive whose bytes are known to be intact, e.g. by their SHA-256).
pub fn read_manifest(path: &Path) -> ArchiveResult<Manifest> {
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(std::fs::File::open(path)?))?;
    manifest_of(&mut zip)
}

fn manifest_of<R: Read + Seek>(zip: &mut zip::ZipArchive<R>) -> ArchiveResult<Manifest> {
    let manifest: Manifest = {
        let entry = zip
            .by_name(MANIFEST_NAME)
            .map_err(|_| ArchiveError::invalid("no manifest.json: not a kontor backup"))?;
        let mut text = String::new();
        entry.take(MAX_MANIFEST).read_to_string(&mut text)?;
        serde_json::from_str(&text)
            .map_err(|e| ArchiveError::invalid(format!("manifest.json: {e}")))?
    };
    if manifest.format != FORMAT {
        return Err(ArchiveError::invalid(format!(
            "manifest format is {:?}, not {FORMAT:?}",
            manifest.format
        )));
    }
    if manifest.format_version != FORMAT_VERSION {
        return Err(ArchiveError::invalid(format!(
            "format version {} is not supported (this reader knows {FORMAT_VERSION})",
            manifest.format_version
        )));
    }
    Ok(manifest)
}

pub fn verify_reader<R: Read + Seek>(r: R) -> ArchiveResult<Verified> {
    let mut zip = zip::ZipArchive::new(r)?;
    let manifest = manifest_of(&mut zip)?;
    let mut listed = HashSet::new();
    for f in &manifest.files {
        if !f.name.ends_with(".csv") || f.name.contains('/') || !listed.insert(f.name.as_str()) {
            return Err(ArchiveError::invalid(format!(
                "manifest lists a bad or repeated file name {:?}",
                f.name
            )));
        }
    }
    for name in zip.file_names() {
        let name = name?;
        if name != MANIFEST_NAME && !listed.contains(&*name) {
            return Err(ArchiveError::invalid(format!(
                "{name} is in the archive but not in its manifest"
            )));
        }
    }
    if zip.len() != manifest.files.len() + 1 {
        return Err(ArchiveError::invalid("the archive repeats an entry"));
    }
    let mut total = 0;
    for f in &manifest.files {
        let entry = zip
            .by_name(&f.name)
            .map_err(|_| ArchiveError::invalid(format!("{} is listed but missing", f.name)))?;
        let mut hashed = Hashing {
            inner: entry,
            sha: Sha256::new(),
            bytes: 0,
        };
        let rows = check_csv(&mut hashed, f)?;
        // Read to the very end so the zip reader checks the CRC.
        std::io::copy(&mut hashed, &mut std::io::sink())?;
        let sha = hex(&hashed.sha.finalize());
        if hashed.bytes != f.bytes {
            return Err(ArchiveError::invalid(format!(
                "{}: {} bytes, the manifest says {}",
                f.name, hashed.bytes, f.bytes
            )));
        }
        if sha != f.sha256 {
            return Err(ArchiveError::invalid(format!(
                "{}: SHA-256 {sha} does not match the manifest's {}",
                f.name, f.sha256
            )));
        }
        if rows != f.rows {
            return Err(ArchiveError::invalid(format!(
                "{}: {rows} rows, the manifest says {}",
                f.name, f.rows
            )));
        }
        total += rows;
    }
    Ok(Verified {
        manifest,
        rows: total,
    })
}

fn check_csv<R: Read>(r: R, f: &crate::ManifestFile) -> ArchiveResult<u64> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .buffer_capacity(1 << 20)
        .from_reader(r);
    let mut record = csv::StringRecord::new();
    if !csv.read_record(&mut record)? {
        return Err(ArchiveError::invalid(format!("{}: empty file", f.name)));
    }
    let expected: Vec<&str> = f.properties.iter().map(|p| p.name.as_str()).collect();
    if record.iter().collect::<Vec<_>>() != expected {
        return Err(ArchiveError::invalid(format!(
            "{}: the header does not match the manifest's properties",
            f.name
        )));
    }
    if expected.first() != Some(&"hs_object_id") {
        return Err(ArchiveError::invalid(format!(
            "{}: hs_object_id is not the first column",
            f.name
        )));
    }
    let mut rows = 0u64;
    let mut last_id = 0i64;
    while csv.read_record(&mut record)? {
        let id: i64 = record[0].parse().map_err(|_| {
            ArchiveError::invalid(format!("{}: row {}: bad hs_object_id", f.name, rows + 1))
        })?;
        if id <= last_id {
            return Err(ArchiveError::invalid(format!(
                "{}: row {}: record ids are not ascending",
                f.name,
                rows + 1
            )));
        }
        last_id = id;
        rows += 1;
    }
    Ok(rows)
}

struct Hashing<R> {
    inner: R,
    sha: Sha256,
    bytes: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Reads the rows of one CSV file of an archive (check it with [`verify`] first), calling `f`
/// with each record id and the values of `columns` in that order (a column the file lacks is
/// an error). `f` returns `false` to stop early.
pub fn read_rows<F>(path: &Path, file: &str, columns: &[String], mut f: F) -> ArchiveResult<()>
where
    F: FnMut(i64, &[&str]) -> ArchiveResult<bool>,
{
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(std::fs::File::open(path)?))?;
    let entry = zip
        .by_name(file)
        .map_err(|_| ArchiveError::invalid(format!("{file} is not in the archive")))?;
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .buffer_capacity(1 << 20)
        .from_reader(entry);
    let mut record = csv::StringRecord::new();
    if !csv.read_record(&mut record)? {
        return Err(ArchiveError::invalid(format!("{file}: empty file")));
    }
    let at: Vec<usize> = columns
        .iter()
        .map(|c| {
            record
                .iter()
                .position(|h| h == c)
                .ok_or_else(|| ArchiveError::invalid(format!("{file} has no column {c:?}")))
        })
        .collect::<ArchiveResult<_>>()?;
    while csv.read_record(&mut record)? {
        let id: i64 = record[0]
            .parse()
            .map_err(|_| ArchiveError::invalid(format!("{file}: bad hs_object_id")))?;
        let values: Vec<&str> = at.iter().map(|i| record.get(*i).unwrap_or("")).collect();
        if !f(id, &values)? {
            break;
        }
    }
    Ok(())
}
