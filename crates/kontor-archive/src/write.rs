//! The archive writer.
//!
//! The zip container is written here rather than with the `zip` crate's writer: that writer
//! compresses each entry on the calling thread, and deflate is most of a backup's cost. Here an
//! entry's bytes are cut into chunks that worker threads deflate independently, each ended by
//! a sync flush (a byte-aligned empty stored block), so their concatenation, closed by an empty
//! final block, is one valid deflate stream, as pigz does. The format written is the plain
//! subset every reader knows: deflate, sizes and CRC patched into the local header (no data
//! descriptors), ZIP64 fields always present so sizes are never limited. The reader side uses
//! the `zip` crate, so each archive is checked by an implementation other than the one that
//! wrote it.

use crate::{hex, ArchiveError, ArchiveResult};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Deflate level, 0 to 9.
    pub level: u32,
    /// Compression threads.
    pub threads: usize,
    /// Uncompressed bytes per independently compressed chunk.
    pub chunk_size: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            level: 1,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            chunk_size: 2 << 20,
        }
    }
}

/// Turns a batch of rows, encoded however the caller likes, into CSV records. Runs on the
/// compression threads, so formatting is spread over the cores as deflate is.
pub trait RowFormatter: Send + Sync {
    /// Writes the batch's rows to `out` and returns how many there were.
    fn format(&self, batch: &[u8], out: &mut CsvRows) -> ArchiveResult<u64>;
}

enum Work {
    /// Entry bytes as they are.
    Bytes(Vec<u8>),
    /// Rows for a formatter.
    Rows(Vec<u8>, Arc<dyn RowFormatter>),
}

struct Job {
    seq: u64,
    work: Work,
}

/// A chunk's uncompressed bytes (handed back for hashing and reuse) and what became of it.
struct Done {
    seq: u64,
    data: Vec<u8>,
    rows: u64,
    crc: crc32fast::Hasher,
    compressed: ArchiveResult<Vec<u8>>,
}

/// Running totals of the entry being written.
#[derive(Default)]
struct Totals {
    crc: crc32fast::Hasher,
    bytes: u64,
    rows: u64,
    compressed: u64,
}

enum Hash {
    Data(Vec<u8>),
    /// Ends the entry: the digest of everything since the previous `Finish`.
    Finish(Sender<[u8; 32]>),
}

/// Formats and deflates chunks on worker threads and hands them back in order.
struct ParDeflate {
    jobs: Option<SyncSender<Job>>,
    hasher: Option<Sender<Hash>>,
    hasher_thread: Option<JoinHandle<()>>,
    done: Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
    next_seq: u64,
    next_out: u64,
    ready: BTreeMap<u64, Done>,
    spare: Arc<Mutex<Vec<Vec<u8>>>>,
    max_in_flight: u64,
    chunk_capacity: usize,
}

fn work(
    z: &mut flate2::Compress,
    work: Work,
    spare: &Mutex<Vec<Vec<u8>>>,
    cap: usize,
) -> (Vec<u8>, u64, ArchiveResult<Vec<u8>>) {
    let (data, rows) = match work {
        Work::Bytes(data) => (data, 0),
        Work::Rows(batch, formatter) => {
            let mut buf = spare
                .lock()
                .ok()
                .and_then(|mut s| s.pop())
                .unwrap_or_else(|| Vec::with_capacity(cap));
            buf.clear();
            let mut out = csv_writer(buf);
            let rows = formatter.format(&batch, &mut out);
            if let Ok(mut s) = spare.lock() {
                if s.len() < 8 {
                    s.push(batch);
                }
            }
            let data = out.into_inner();
            match rows {
                Ok(n) => (data, n),
                Err(e) => return (data, 0, Err(e)),
            }
        }
    };
    z.reset();
    let compressed = deflate_chunk(z, &data).map_err(ArchiveError::Io);
    (data, rows, compressed)
}

impl ParDeflate {
    fn new(opts: &WriterOptions) -> Self {
        let threads = opts.threads.max(1);
        let (jobs_tx, jobs_rx) = sync_channel::<Job>(threads);
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let (done_tx, done_rx) = channel::<Done>();
        let level = opts.level.min(9);
        let spare: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let cap = opts.chunk_size + (opts.chunk_size >> 2);
        let workers = (0..threads)
            .map(|_| {
                let rx = Arc::clone(&jobs_rx);
                let tx: Sender<Done> = done_tx.clone();
                let spare = Arc::clone(&spare);
                let worker = std::thread::Builder::new().name("kontor-deflate".into());
                worker
                    .spawn(move || {
                        let mut z = flate2::Compress::new(flate2::Compression::new(level), false);
                        loop {
                            let job = match rx.lock() {
                                Ok(rx) => rx.recv(),
                                Err(_) => return,
                            };
                            let Ok(job) = job else { return };
                            let (data, rows, compressed) = work(&mut z, job.work, &spare, cap);
                            let mut crc = crc32fast::Hasher::new();
                            crc.update(&data);
                            let done = Done {
                                seq: job.seq,
                                data,
                                rows,
                                crc,
                                compressed,
                            };
                            if tx.send(done).is_err() {
                                return;
                            }
                        }
                    })
                    // As `std::thread::spawn` would: there is no archive without its threads.
                    .expect("the system refused a compression thread")
            })
            .collect();
        let (hash_tx, hash_rx) = channel::<Hash>();
        let hash_spare = Arc::clone(&spare);
        let hasher = std::thread::Builder::new().name("kontor-sha256".into());
        let hasher_thread = hasher
            .spawn(move || {
                let mut sha = Sha256::new();
                while let Ok(msg) = hash_rx.recv() {
                    match msg {
                        Hash::Data(data) => {
                            sha.update(&data);
                            if let Ok(mut s) = hash_spare.lock() {
                                if s.len() < 8 {
                                    s.push(data);
                                }
                            }
                        }
                        Hash::Finish(reply) => {
                            let _ = reply.send(std::mem::take(&mut sha).finalize().into());
                        }
                    }
                }
            })
            .expect("the system refused a hashing thread");
        Self {
            jobs: Some(jobs_tx),
            hasher: Some(hash_tx),
            hasher_thread: Some(hasher_thread),
            done: done_rx,
            workers,
            next_seq: 0,
            next_out: 0,
            ready: BTreeMap::new(),
            spare,
            max_in_flight: 2 * threads as u64 + 2,
            chunk_capacity: cap,
        }
    }

    fn buffer(&mut self) -> Vec<u8> {
        let mut b = self
            .spare
            .lock()
            .ok()
            .and_then(|mut s| s.pop())
            .unwrap_or_default();
        b.clear();
        b.reserve(self.chunk_capacity);
        b
    }

    /// Queues a chunk, then writes every chunk that is done and next in order. Blocks while
    /// too many chunks are in flight, which bounds memory.
    fn submit(
        &mut self,
        work: Work,
        out: &mut dyn Write,
        totals: &mut Totals,
    ) -> ArchiveResult<()> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let jobs = self.jobs.as_ref().ok_or_else(closed)?;
        jobs.send(Job { seq, work }).map_err(|_| closed())?;
        self.collect(out, false, totals)?;
        while self.next_seq - self.next_out > self.max_in_flight {
            self.collect(out, true, totals)?;
        }
        Ok(())
    }

    /// Writes all queued chunks.
    fn drain(&mut self, out: &mut dyn Write, totals: &mut Totals) -> ArchiveResult<()> {
        while self.next_out < self.next_seq {
            self.collect(out, true, totals)?;
        }
        Ok(())
    }

    fn collect(
        &mut self,
        out: &mut dyn Write,
        wait: bool,
        totals: &mut Totals,
    ) -> ArchiveResult<()> {
        if wait {
            let d = self.done.recv().map_err(|_| closed())?;
            self.ready.insert(d.seq, d);
        }
        while let Ok(d) = self.done.try_recv() {
            self.ready.insert(d.seq, d);
        }
        while let Some(d) = self.ready.remove(&self.next_out) {
            self.next_out += 1;
            let compressed = d.compressed?;
            out.write_all(&compressed)?;
            totals.compressed += compressed.len() as u64;
            totals.crc.combine(&d.crc);
            totals.bytes += d.data.len() as u64;
            totals.rows += d.rows;
            // SHA-256 needs the bytes in order; a thread of its own keeps it off this one.
            let hasher = self.hasher.as_ref().ok_or_else(closed)?;
            hasher.send(Hash::Data(d.data)).map_err(|_| closed())?;
        }
        Ok(())
    }
}

impl ParDeflate {
    /// The SHA-256 of the bytes written since the last call.
    fn digest(&mut self) -> ArchiveResult<[u8; 32]> {
        let (tx, rx) = channel();
        let hasher = self.hasher.as_ref().ok_or_else(closed)?;
        hasher.send(Hash::Finish(tx)).map_err(|_| closed())?;
        rx.recv().map_err(|_| closed())
    }
}

impl Drop for ParDeflate {
    fn drop(&mut self) {
        self.jobs = None;
        self.hasher = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        if let Some(h) = self.hasher_thread.take() {
            let _ = h.join();
        }
    }
}

fn closed() -> ArchiveError {
    ArchiveError::Io(std::io::Error::other("compression worker stopped"))
}

/// Raw deflate of one chunk, ended by a sync flush so another chunk may follow.
fn deflate_chunk(z: &mut flate2::Compress, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    loop {
        let consumed = (z.total_in() as usize).min(data.len());
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(4096));
        }
        z.compress_vec(&data[consumed..], &mut out, flate2::FlushCompress::Sync)
            .map_err(std::io::Error::other)?;
        // Done once all input is in and the flush had room to finish.
        if z.total_in() as usize == data.len() && out.len() < out.capacity() {
            return Ok(out);
        }
    }
}

/// An empty final block with fixed Huffman codes: ends a stream of sync-flushed chunks.
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

struct Entry {
    name: String,
    crc: u32,
    compressed: u64,
    uncompressed: u64,
    offset: u64,
}

/// Writes an archive into `W`, entry after entry.
pub struct ArchiveWriter<W: Write + Seek> {
    out: W,
    pos: u64,
    entries: Vec<Entry>,
    deflate: ParDeflate,
    opts: WriterOptions,
    dos_time: (u16, u16),
    /// The open entry's totals.
    totals: Totals,
    open: Option<OpenCsv>,
}

/// What one finished entry holds.
#[derive(Debug, Clone)]
pub struct EntrySummary {
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

impl<W: Write + Seek> ArchiveWriter<W> {
    pub fn new(mut out: W, opts: WriterOptions) -> ArchiveResult<Self> {
        let pos = out.stream_position()?;
        Ok(Self {
            out,
            pos,
            entries: Vec::new(),
            deflate: ParDeflate::new(&opts),
            opts,
            dos_time: dos_time(chrono::Utc::now()),
            totals: Totals::default(),
            open: None,
        })
    }

    fn begin_entry(&mut self, name: &str) -> ArchiveResult<()> {
        if self.entries.iter().any(|e| e.name == name) {
            return Err(ArchiveError::invalid(format!("duplicate entry {name}")));
        }
        let offset = self.pos;
        self.totals = Totals::default();
        let mut h = Vec::with_capacity(64 + name.len());
        h.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        h.extend_from_slice(&45u16.to_le_bytes()); // version needed: ZIP64
        h.extend_from_slice(&0x0800u16.to_le_bytes()); // UTF-8 names
        h.extend_from_slice(&8u16.to_le_bytes()); // deflate
        h.extend_from_slice(&self.dos_time.0.to_le_bytes());
        h.extend_from_slice(&self.dos_time.1.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes()); // crc, patched
        h.extend_from_slice(&u32::MAX.to_le_bytes()); // sizes are in the ZIP64 field
        h.extend_from_slice(&u32::MAX.to_le_bytes());
        h.extend_from_slice(&(name.len() as u16).to_le_bytes());
        h.extend_from_slice(&20u16.to_le_bytes());
        h.extend_from_slice(name.as_bytes());
        h.extend_from_slice(&1u16.to_le_bytes()); // ZIP64 extended information
        h.extend_from_slice(&16u16.to_le_bytes());
        h.extend_from_slice(&0u64.to_le_bytes()); // uncompressed, patched
        h.extend_from_slice(&0u64.to_le_bytes()); // compressed, patched
        self.out.write_all(&h)?;
        self.pos += h.len() as u64;
        self.entries.push(Entry {
            name: name.to_string(),
            crc: 0,
            compressed: 0,
            uncompressed: 0,
            offset,
        });
        Ok(())
    }

    /// Ends the open entry: patches its header and returns its totals.
    fn end_entry(&mut self) -> ArchiveResult<(Totals, [u8; 32])> {
        self.deflate.drain(&mut self.out, &mut self.totals)?;
        let sha = self.deflate.digest()?;
        let totals = std::mem::take(&mut self.totals);
        let crc = totals.crc.clone().finalize();
        let uncompressed = totals.bytes;
        self.out.write_all(&FINAL_BLOCK)?;
        let compressed = totals.compressed + FINAL_BLOCK.len() as u64;
        let entry = self.entries.last_mut().expect("an entry is open");
        let data_start = entry.offset + 30 + entry.name.len() as u64 + 20;
        entry.crc = crc;
        entry.compressed = compressed;
        entry.uncompressed = uncompressed;
        self.pos = data_start + compressed;
        self.out.seek(SeekFrom::Start(entry.offset + 14))?;
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.seek(SeekFrom::Start(
            entry.offset + 30 + entry.name.len() as u64 + 4,
        ))?;
        self.out.write_all(&uncompressed.to_le_bytes())?;
        self.out.write_all(&compressed.to_le_bytes())?;
        self.out.seek(SeekFrom::Start(self.pos))?;
        Ok((totals, sha))
    }

    /// Queues entry bytes for compression; `end_entry` totals what was written.
    fn chunk(&mut self, work: Work) -> ArchiveResult<()> {
        self.deflate.submit(work, &mut self.out, &mut self.totals)
    }

    /// Starts a CSV entry and writes its header row. Rows follow with [`Self::write_row`] or
    /// [`Self::write_batch`]; [`Self::end_csv`] closes it.
    pub fn begin_csv<S: AsRef<str>>(&mut self, name: &str, header: &[S]) -> ArchiveResult<()> {
        if self.open.is_some() {
            return Err(ArchiveError::invalid("a CSV entry is already open"));
        }
        self.begin_entry(name)?;
        let mut csv = csv_writer(self.deflate.buffer());
        csv.write_record(header.iter().map(|h| h.as_ref()));
        self.open = Some(OpenCsv { csv, rows: 0 });
        Ok(())
    }

    /// Writes one row, formatted on this thread.
    pub fn write_row<I, T>(&mut self, fields: I) -> ArchiveResult<()>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        let open = self
            .open
            .as_mut()
            .ok_or_else(|| ArchiveError::invalid("no CSV entry is open"))?;
        open.csv.write_record(fields);
        open.rows += 1;
        if open.csv.get_ref().len() >= self.opts.chunk_size {
            self.seal()?;
        }
        Ok(())
    }

    /// Hands a batch of encoded rows to the worker threads, which format them with
    /// `formatter`; batches keep their order in the file.
    pub fn write_batch(
        &mut self,
        batch: Vec<u8>,
        formatter: Arc<dyn RowFormatter>,
    ) -> ArchiveResult<()> {
        if self.open.is_none() {
            return Err(ArchiveError::invalid("no CSV entry is open"));
        }
        self.seal()?;
        self.chunk(Work::Rows(batch, formatter))
    }

    /// A buffer for [`Self::write_batch`], reused from earlier chunks.
    pub fn batch_buffer(&mut self) -> Vec<u8> {
        self.deflate.buffer()
    }

    /// Hands the rows formatted on this thread to the compressors.
    fn seal(&mut self) -> ArchiveResult<()> {
        let open = self.open.as_mut().expect("an entry is open");
        if open.csv.get_ref().is_empty() {
            return Ok(());
        }
        let fresh = csv_writer(self.deflate.buffer());
        let open = self.open.as_mut().expect("an entry is open");
        let data = std::mem::replace(&mut open.csv, fresh).into_inner();
        if data.is_empty() {
            return Ok(());
        }
        self.chunk(Work::Bytes(data))
    }

    /// Ends the open CSV entry: `rows` excludes the header.
    pub fn end_csv(&mut self) -> ArchiveResult<EntrySummary> {
        if self.open.is_none() {
            return Err(ArchiveError::invalid("no CSV entry is open"));
        }
        self.seal()?;
        let open = self.open.take().expect("checked above");
        let (totals, sha) = self.end_entry()?;
        Ok(EntrySummary {
            rows: open.rows + totals.rows,
            bytes: totals.bytes,
            sha256: hex(&sha),
        })
    }

    /// [`Self::begin_csv`] with a handle that writes rows and ends the entry.
    pub fn csv<S: AsRef<str>>(
        &mut self,
        name: &str,
        header: &[S],
    ) -> ArchiveResult<CsvEntry<'_, W>> {
        self.begin_csv(name, header)?;
        Ok(CsvEntry { archive: self })
    }

    /// Adds a small file in one piece.
    pub fn file(&mut self, name: &str, data: &[u8]) -> ArchiveResult<()> {
        if self.open.is_some() {
            return Err(ArchiveError::invalid("a CSV entry is still open"));
        }
        self.begin_entry(name)?;
        for piece in data.chunks(self.opts.chunk_size.max(1)) {
            let mut b = self.deflate.buffer();
            b.extend_from_slice(piece);
            self.chunk(Work::Bytes(b))?;
        }
        self.end_entry().map(|_| ())
    }

    /// Writes the central directory and returns the output.
    pub fn finish(mut self) -> ArchiveResult<W> {
        if self.open.is_some() {
            return Err(ArchiveError::invalid("a CSV entry is still open"));
        }
        let cd_start = self.pos;
        let mut cd = Vec::new();
        for e in &self.entries {
            cd.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            cd.extend_from_slice(&(45u16 | (3 << 8)).to_le_bytes()); // made by: Unix, 4.5
            cd.extend_from_slice(&45u16.to_le_bytes());
            cd.extend_from_slice(&0x0800u16.to_le_bytes());
            cd.extend_from_slice(&8u16.to_le_bytes());
            cd.extend_from_slice(&self.dos_time.0.to_le_bytes());
            cd.extend_from_slice(&self.dos_time.1.to_le_bytes());
            cd.extend_from_slice(&e.crc.to_le_bytes());
            cd.extend_from_slice(&u32::MAX.to_le_bytes());
            cd.extend_from_slice(&u32::MAX.to_le_bytes());
            cd.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            cd.extend_from_slice(&28u16.to_le_bytes());
            cd.extend_from_slice(&0u16.to_le_bytes()); // comment
            cd.extend_from_slice(&0u16.to_le_bytes()); // disk
            cd.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
            cd.extend_from_slice(&((0o100600u32) << 16).to_le_bytes()); // a regular file, rw-------
            cd.extend_from_slice(&u32::MAX.to_le_bytes());
            cd.extend_from_slice(e.name.as_bytes());
            cd.extend_from_slice(&1u16.to_le_bytes());
            cd.extend_from_slice(&24u16.to_le_bytes());
            cd.extend_from_slice(&e.uncompressed.to_le_bytes());
            cd.extend_from_slice(&e.compressed.to_le_bytes());
            cd.extend_from_slice(&e.offset.to_le_bytes());
        }
        let n = self.entries.len() as u64;
        let cd_size = cd.len() as u64;
        let eocd64 = cd_start + cd_size;
        cd.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
        cd.extend_from_slice(&44u64.to_le_bytes());
        cd.extend_from_slice(&(45u16 | (3 << 8)).to_le_bytes());
        cd.extend_from_slice(&45u16.to_le_bytes());
        cd.extend_from_slice(&0u32.to_le_bytes());
        cd.extend_from_slice(&0u32.to_le_bytes());
        cd.extend_from_slice(&n.to_le_bytes());
        cd.extend_from_slice(&n.to_le_bytes());
        cd.extend_from_slice(&cd_size.to_le_bytes());
        cd.extend_from_slice(&cd_start.to_le_bytes());
        cd.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
        cd.extend_from_slice(&0u32.to_le_bytes());
        cd.extend_from_slice(&eocd64.to_le_bytes());
        cd.extend_from_slice(&1u32.to_le_bytes());
        cd.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        cd.extend_from_slice(&0u16.to_le_bytes());
        cd.extend_from_slice(&0u16.to_le_bytes());
        let n16 = u16::try_from(n).unwrap_or(u16::MAX);
        cd.extend_from_slice(&n16.to_le_bytes());
        cd.extend_from_slice(&n16.to_le_bytes());
        cd.extend_from_slice(&u32::try_from(cd_size).unwrap_or(u32::MAX).to_le_bytes());
        cd.extend_from_slice(&u32::try_from(cd_start).unwrap_or(u32::MAX).to_le_bytes());
        cd.extend_from_slice(&0u16.to_le_bytes());
        self.out.write_all(&cd)?;
        self.out.flush()?;
        let ArchiveWriter { out, deflate, .. } = self;
        drop(deflate);
        Ok(out)
    }
}

struct OpenCsv {
    /// Rows formatted on the caller's thread ([`ArchiveWriter::write_row`]).
    csv: CsvRows,
    rows: u64,
}

/// One CSV file being written: rows go through the `csv` crate; every `chunk_size` bytes the
/// buffer is handed to the compressors.
pub struct CsvEntry<'a, W: Write + Seek> {
    archive: &'a mut ArchiveWriter<W>,
}

impl<W: Write + Seek> CsvEntry<'_, W> {
    pub fn write_row<I, T>(&mut self, fields: I) -> ArchiveResult<()>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.archive.write_row(fields)
    }

    pub fn finish(self) -> ArchiveResult<EntrySummary> {
        self.archive.end_csv()
    }
}

fn csv_writer(buf: Vec<u8>) -> CsvRows {
    CsvRows { buf }
}

/// CSV records (RFC 4180: `,` between fields, `\n` after each record, a field quoted, with its
/// quotes doubled, only when it holds `,` `"` CR or LF). Written by hand rather than with the
/// `csv` crate's writer, whose byte-at-a-time state machine was a tenth of a backup's CPU; the
/// reader side (`verify`) is the `csv` crate, so its output is checked by another parser.
#[derive(Debug, Default)]
pub struct CsvRows {
    buf: Vec<u8>,
}

impl CsvRows {
    pub fn write_record<I, T>(&mut self, fields: I)
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        for (i, f) in fields.into_iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            let f = f.as_ref();
            if f.iter().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
                self.buf.push(b'"');
                for piece in f.split_inclusive(|b| *b == b'"') {
                    self.buf.extend_from_slice(piece);
                    if piece.last() == Some(&b'"') {
                        self.buf.push(b'"');
                    }
                }
                self.buf.push(b'"');
            } else {
                self.buf.extend_from_slice(f);
            }
        }
        self.buf.push(b'\n');
    }

    pub fn get_ref(&self) -> &[u8] {
        &self.buf
    }

    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }
}

/// MS-DOS date and time fields of `t` (local time is not known here: UTC).
fn dos_time(t: chrono::DateTime<chrono::Utc>) -> (u16, u16) {
    use chrono::{Datelike, Timelike};
    let time = ((t.hour() as u16) << 11) | ((t.minute() as u16) << 5) | (t.second() as u16 / 2);
    let year = (t.year().clamp(1980, 2107) - 1980) as u16;
    let date = (year << 9) | ((t.month() as u16) << 5) | t.day() as u16;
    (time, date)
}
