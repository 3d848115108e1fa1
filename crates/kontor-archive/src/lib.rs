//! The backup archive: a `.zip` holding one CSV file per object type and a `manifest.json`
//! that says what each file holds and how to check it.
//!
//! - CSV: UTF-8, RFC 4180 (CRLF is not required; rows end in `\n`, fields are quoted only when
//!   they must be), a header of property internal names with `hs_object_id` first.
//! - `manifest.json`: format version, account, region, the change-log sequence and time the
//!   snapshot is from, and per file the object type, the properties (name, label, type,
//!   sensitive flag), the row count and the SHA-256 of the CSV bytes.
//!
//! [`ArchiveWriter`] compresses on several threads (see `write.rs`); [`verify`] reads an
//! archive back with an independent reader (the `zip` crate) and checks every byte of it.

mod read;
mod write;

pub use read::{read_manifest, read_rows, verify, verify_reader, Verified};
pub use write::{ArchiveWriter, CsvEntry, CsvRows, EntrySummary, RowFormatter, WriterOptions};

use serde::{Deserialize, Serialize};

/// `format` of every manifest.
pub const FORMAT: &str = "kontor-backup";
/// Bumped on any change a reader of the previous version would misread.
pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST_NAME: &str = "manifest.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub account_id: i64,
    pub account_name: String,
    pub region: String,
    pub backup_id: i64,
    /// The last change-log sequence number the snapshot includes.
    pub snapshot_seq: i64,
    /// When the snapshot was taken (ISO 8601, UTC).
    pub snapshot_at: String,
    pub files: Vec<ManifestFile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestFile {
    /// The entry name inside the zip, e.g. `contacts.csv`.
    pub name: String,
    /// The object type's API name (`contacts`, or a custom object's name).
    pub object_type: String,
    pub object_type_id: String,
    /// The CSV's columns, in order.
    pub properties: Vec<ManifestProperty>,
    pub rows: u64,
    /// Lower-case hex SHA-256 of the CSV bytes.
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestProperty {
    pub name: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub field_type: String,
    pub sensitive: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The archive is not what its manifest says, or not an archive of ours at all.
    #[error("{0}")]
    Invalid(String),
}

impl ArchiveError {
    fn invalid(msg: impl Into<String>) -> Self {
        ArchiveError::Invalid(msg.into())
    }
}

impl From<csv::Error> for ArchiveError {
    fn from(e: csv::Error) -> Self {
        match e.into_kind() {
            csv::ErrorKind::Io(e) => ArchiveError::Io(e),
            other => ArchiveError::Invalid(format!("CSV: {other:?}")),
        }
    }
}

impl From<zip::result::ZipError> for ArchiveError {
    fn from(e: zip::result::ZipError) -> Self {
        match e {
            zip::result::ZipError::Io(e) if e.kind() != std::io::ErrorKind::InvalidData => {
                ArchiveError::Io(e)
            }
            other => ArchiveError::Invalid(format!("zip: {other}")),
        }
    }
}

pub type ArchiveResult<T> = Result<T, ArchiveError>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
