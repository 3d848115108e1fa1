//! Reading an import's file: the check made before it is queued, and the rows the job applies.
//! Both read the file as a stream from disk (a file of any size costs a few buffers), and both
//! are blocking code: callers run them on a blocking thread, never on an async worker.

use super::{bad, ImportSpec};
use anyhow::Result;
use kontor_store::{StoreError, StoreResult};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

const BUFFER: usize = 1 << 16;

fn csv_reader<R: Read>(r: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(BUFFER)
        .from_reader(r)
}

/// Skips a UTF-8 byte order mark: it is not part of the first column's name.
fn skip_bom<R: BufRead>(input: &mut R) {
    let bom = input
        .fill_buf()
        .map(|b| b.starts_with(b"\xEF\xBB\xBF"))
        .unwrap_or(false);
    if bom {
        input.consume(3);
    }
}

fn open(path: &Path) -> StoreResult<BufReader<std::fs::File>> {
    let f = std::fs::File::open(path)
        .map_err(|e| StoreError::Config(format!("reading the uploaded file: {e}")))?;
    Ok(BufReader::with_capacity(BUFFER, f))
}

/// Checks the file against the mapping (UTF-8, the header names the mapped columns) and
/// counts its rows.
pub fn inspect_csv(bytes: &[u8], spec: &ImportSpec) -> StoreResult<i64> {
    inspect_rows(bytes, spec)
}

/// [`inspect_csv`] of a file on disk, read as a stream.
pub fn inspect_csv_file(path: &Path, spec: &ImportSpec) -> StoreResult<i64> {
    inspect_rows(open(path)?, spec)
}

fn inspect_rows<R: BufRead>(mut input: R, spec: &ImportSpec) -> StoreResult<i64> {
    skip_bom(&mut input);
    let mut r = csv_reader(input);
    let mut rows = 0i64;
    let mut record = csv::StringRecord::new();
    let mut first = true;
    loop {
        match r.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) => {
                return Err(bad(format!("the file is not UTF-8 text: {e}"), "files"))
            }
            Err(e) => return Err(bad(format!("the file is not valid CSV: {e}"), "files")),
        }
        if first && spec.has_header {
            first = false;
            let header: Vec<&str> = record.iter().map(str::trim).collect();
            for (i, c) in spec.columns.iter().enumerate() {
                let at = header.get(i).copied().unwrap_or("");
                if !c.name.is_empty() && !at.eq_ignore_ascii_case(c.name.trim()) {
                    return Err(bad(
                        format!(
                            "column {} of the file is {at:?}, but the mapping names {:?}",
                            i + 1,
                            c.name
                        ),
                        "files[0].fileImportPage.columnMappings",
                    ));
                }
            }
            continue;
        }
        first = false;
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(bad("the file has no rows to import", "files"));
    }
    Ok(rows)
}

/// A reader that notes where the line-break bytes it passes on are, so that rows can be given
/// the line they start on without keeping the file: `(offset, ends a line)` for every `\r` and
/// `\n`, where `\n`, `\r\n` (its `\n`) and a lone `\r` each end one line, as for the CSV reader.
/// Marks are dropped once counted; the ones kept are those of the CSV reader's read-ahead.
struct LineEnds<R> {
    inner: R,
    offset: u64,
    marks: VecDeque<(u64, bool)>,
    /// A `\r` that ended the last chunk: whether it ends a line depends on the next byte.
    pending_cr: Option<u64>,
}

impl<R: Read> Read for LineEnds<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let chunk = &buf[..n];
        if let Some(cr) = self.pending_cr.take() {
            self.marks.push_back((cr, chunk.first() != Some(&b'\n')));
        }
        for i in memchr::memchr2_iter(b'\r', b'\n', chunk) {
            let at = self.offset + i as u64;
            match (chunk[i], chunk.get(i + 1)) {
                (b'\n', _) => self.marks.push_back((at, true)),
                (_, Some(next)) => self.marks.push_back((at, *next != b'\n')),
                (_, None) => self.pending_cr = Some(at),
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// The data rows of a file (blank rows skipped) with their 1-based line numbers, read as a
/// stream.
pub(crate) struct DataRows<R> {
    reader: csv::Reader<LineEnds<R>>,
    header_pending: bool,
    /// The header row, once the first row was read (files with a header only).
    pub header: Option<Vec<String>>,
    record: csv::StringRecord,
    /// Line ends before this offset are counted in `lines`.
    counted: u64,
    lines: i64,
}

impl DataRows<BufReader<std::fs::File>> {
    pub fn open(path: &Path, has_header: bool) -> StoreResult<Self> {
        Ok(Self::new(open(path)?, has_header))
    }
}

impl<R: BufRead> DataRows<R> {
    pub fn new(mut input: R, has_header: bool) -> Self {
        skip_bom(&mut input);
        Self {
            reader: csv_reader(LineEnds {
                inner: input,
                offset: 0,
                marks: VecDeque::new(),
                pending_cr: None,
            }),
            header_pending: has_header,
            header: None,
            record: csv::StringRecord::new(),
            counted: 0,
            lines: 1,
        }
    }

    pub fn next_row(&mut self) -> Result<Option<(i64, Vec<String>)>> {
        while self.reader.read_record(&mut self.record)? {
            let fields = || self.record.iter().map(str::to_string).collect();
            if std::mem::take(&mut self.header_pending) {
                self.header = Some(fields());
                continue;
            }
            if self.record.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            // The line the record starts on, counted here: the csv crate's own count is one
            // short after CRLF line ends. A record's position may be where the blank lines
            // before it begin: those line breaks are passed over.
            let mut at = self
                .record
                .position()
                .map_or(self.counted, |p| p.byte())
                .max(self.counted);
            let marks = &mut self.reader.get_mut().marks;
            while let Some(&(offset, ends)) = marks.front() {
                if offset > at {
                    break;
                }
                if offset == at {
                    at += 1;
                }
                self.lines += i64::from(ends);
                marks.pop_front();
            }
            self.counted = at;
            return Ok(Some((self.lines, fields())));
        }
        Ok(None)
    }

    pub fn batch(&mut self, limit: usize) -> Result<Vec<(i64, Vec<String>)>> {
        let mut out = Vec::with_capacity(limit.min(4096));
        while out.len() < limit {
            match self.next_row()? {
                Some(r) => out.push(r),
                None => break,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::DataRows;

    fn lines(text: &str, header: bool) -> Vec<(i64, Vec<String>)> {
        read_all(text.as_bytes(), header).unwrap()
    }

    fn read_all(bytes: &[u8], header: bool) -> anyhow::Result<Vec<(i64, Vec<String>)>> {
        let mut r = DataRows::new(bytes, header);
        let mut out = Vec::new();
        while let Some(row) = r.next_row()? {
            out.push(row);
        }
        Ok(out)
    }

    /// The line each row starts on, counted over the whole text: what the streaming reader
    /// must agree with, whatever its chunks.
    fn read_chunked(bytes: &[u8], header: bool, chunk: usize) -> anyhow::Result<Vec<i64>> {
        /// Hands out at most `chunk` bytes per read, as a file or a socket may.
        struct Trickle<'a>(&'a [u8], usize);
        impl std::io::Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.1.min(buf.len()).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let input = std::io::BufReader::with_capacity(chunk.max(3), Trickle(bytes, chunk));
        let mut r = DataRows::new(input, header);
        let mut out = Vec::new();
        while let Some((line, _)) = r.next_row()? {
            out.push(line);
        }
        Ok(out)
    }

    #[test]
    fn rows_know_their_lines_whatever_the_line_ends() {
        for nl in ["\n", "\r\n", "\r"] {
            let text = format!(
                "\u{feff}email,note{nl}a@x.io,one{nl}{nl}b@x.io,\"two{nl}lines\"{nl}c@x.io,three{nl}"
            );
            let got = lines(&text, true);
            let at: Vec<i64> = got.iter().map(|r| r.0).collect();
            // Line 3 is blank; the quoted field spans lines 4 and 5.
            assert_eq!(at, [2, 4, 6], "line ends {nl:?}");
            assert_eq!(got[0].1, ["a@x.io", "one"]);
            assert_eq!(got[1].1[1], format!("two{nl}lines"));
            for chunk in 1..8 {
                assert_eq!(
                    read_chunked(text.as_bytes(), true, chunk).unwrap(),
                    [2, 4, 6],
                    "line ends {nl:?}, {chunk}-byte reads"
                );
            }
        }
        assert_eq!(
            lines("a,b\nc,d", false)
                .iter()
                .map(|r| r.0)
                .collect::<Vec<_>>(),
            [1, 2]
        );
    }

    #[test]
    fn the_header_is_kept_and_bad_text_refused() {
        let mut r = DataRows::new(&b"\xEF\xBB\xBFemail,name\nada@x.io,Ada\n"[..], true);
        assert_eq!(r.next_row().unwrap().unwrap().0, 2);
        assert_eq!(
            r.header.as_deref(),
            Some(&["email".into(), "name".into()][..])
        );
        assert!(read_all(b"email\n\xff\xfe\n", true).is_err(), "not UTF-8");
    }

    /// Line numbers counted over the whole text (blank lines before a row passed over).
    fn lines_by_text(bytes: &[u8], header: bool) -> Option<Vec<i64>> {
        let text = std::str::from_utf8(bytes).ok()?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text).as_bytes();
        let mut reader = super::csv_reader(text);
        let mut record = csv::StringRecord::new();
        let (mut counted, mut lines, mut skip, mut out) = (0usize, 1i64, header, Vec::new());
        while reader.read_record(&mut record).ok()? {
            if std::mem::take(&mut skip) || record.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            let mut at = record.position().map_or(counted, |p| p.byte() as usize);
            at = at.clamp(counted, text.len());
            while matches!(text.get(at), Some(b'\r' | b'\n')) {
                at += 1;
            }
            let span = &text[counted..at];
            let lf = memchr::memchr_iter(b'\n', span).count();
            let lone_cr = memchr::memchr_iter(b'\r', span)
                .filter(|&i| text.get(counted + i + 1) != Some(&b'\n'))
                .count();
            lines += (lf + lone_cr) as i64;
            counted = at;
            out.push(lines);
        }
        Some(out)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]
        /// Any bytes at all, as an upload may hold: the file check and the job's reader answer
        /// (rows or an error) without panicking, and the rows they find agree, in line order,
        /// on the lines the whole text shows, however the file arrives in chunks.
        #[test]
        fn any_upload_is_read_or_refused(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::any::<u8>(),
                    proptest::sample::select(b",\"\r\n ab\xEF\xBB\xBF".to_vec()),
                ],
                0..400,
            ),
            header in proptest::prelude::any::<bool>(),
            chunk in 1usize..64,
        ) {
            let spec = crate::import::tests_spec(header);
            let counted = super::inspect_csv(&bytes, &spec);
            let read = read_all(&bytes, header);
            if let Ok(rows) = &read {
                let at: Vec<i64> = rows.iter().map(|r| r.0).collect();
                proptest::prop_assert!(at.windows(2).all(|w| w[0] < w[1]), "lines in order: {at:?}");
                proptest::prop_assert_eq!(Some(at.clone()), lines_by_text(&bytes, header));
                proptest::prop_assert_eq!(read_chunked(&bytes, header, chunk).ok(), Some(at));
                if let Ok(total) = counted {
                    proptest::prop_assert_eq!(total, rows.len() as i64, "the check and the job count alike");
                }
            } else {
                proptest::prop_assert!(counted.is_err(), "the check takes what the job refuses");
            }
        }
    }
}
