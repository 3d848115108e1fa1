//! The writer's archives read back through the `zip` crate and pass `verify`; damaged ones
//! do not.

use kontor_archive::*;
use proptest::prelude::*;
use std::io::{Cursor, Read};

fn props(names: &[&str]) -> Vec<ManifestProperty> {
    names
        .iter()
        .map(|n| ManifestProperty {
            name: n.to_string(),
            label: n.to_uppercase(),
            kind: "string".into(),
            field_type: "text".into(),
            sensitive: *n == "secret",
        })
        .collect()
}

/// Writes `files` (name, columns, rows) as an archive with a manifest.
fn build(files: &[(&str, Vec<&str>, Vec<Vec<String>>)], opts: WriterOptions) -> Vec<u8> {
    let mut w = ArchiveWriter::new(Cursor::new(Vec::new()), opts).unwrap();
    let mut manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        account_id: 7,
        account_name: "Test".into(),
        region: "us".into(),
        backup_id: 1,
        snapshot_seq: 42,
        snapshot_at: "2026-11-23T10:00:00.000Z".into(),
        files: vec![],
    };
    for (name, cols, rows) in files {
        let mut e = w.csv(&format!("{name}.csv"), cols).unwrap();
        for r in rows {
            e.write_row(r).unwrap();
        }
        let s = e.finish().unwrap();
        manifest.files.push(ManifestFile {
            name: format!("{name}.csv"),
            object_type: name.to_string(),
            object_type_id: "0-1".into(),
            properties: props(cols),
            rows: s.rows,
            sha256: s.sha256,
            bytes: s.bytes,
        });
    }
    w.file(
        MANIFEST_NAME,
        &serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    w.finish().unwrap().into_inner()
}

fn rows(n: usize) -> Vec<Vec<String>> {
    (1..=n)
        .map(|i| {
            vec![
                i.to_string(),
                format!("person{i}@example.com"),
                if i % 3 == 0 {
                    String::new()
                } else {
                    format!("Müller, \"Jr\" {i}\nline two")
                },
            ]
        })
        .collect()
}

fn read_entry(bytes: &[u8], name: &str) -> Vec<u8> {
    let mut z = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut out = Vec::new();
    z.by_name(name).unwrap().read_to_end(&mut out).unwrap();
    out
}

fn small_chunks() -> WriterOptions {
    WriterOptions {
        level: 1,
        threads: 3,
        chunk_size: 256,
    }
}

#[test]
fn round_trip_many_chunks() {
    let data = rows(2000);
    let bytes = build(
        &[(
            "contacts",
            vec!["hs_object_id", "email", "secret"],
            data.clone(),
        )],
        small_chunks(),
    );
    let v = verify_reader(Cursor::new(&bytes)).unwrap();
    assert_eq!(v.rows, 2000);
    assert_eq!(v.manifest.files[0].rows, 2000);
    assert!(v.manifest.files[0].properties[2].sensitive);
    let csv = read_entry(&bytes, "contacts.csv");
    let mut r = csv::Reader::from_reader(&csv[..]);
    assert_eq!(
        r.headers().unwrap(),
        vec!["hs_object_id", "email", "secret"]
    );
    let back: Vec<Vec<String>> = r
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    assert_eq!(back, data);
}

#[test]
fn empty_archive_and_small_files() {
    let bytes = build(&[], WriterOptions::default());
    assert_eq!(verify_reader(Cursor::new(&bytes)).unwrap().rows, 0);
    let bytes = build(
        &[(
            "deals",
            vec!["hs_object_id", "dealname"],
            vec![vec!["5".into(), "Big".into()]],
        )],
        WriterOptions::default(),
    );
    assert_eq!(
        read_entry(&bytes, "deals.csv"),
        b"hs_object_id,dealname\n5,Big\n"
    );
}

#[test]
fn other_tools_can_open_it() {
    // Python's zipfile is an independent reader; skip quietly only if python3 is absent.
    let bytes = build(
        &[(
            "contacts",
            vec!["hs_object_id", "email", "secret"],
            rows(500),
        )],
        small_chunks(),
    );
    let dir = std::env::temp_dir().join(format!("kontor-archive-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("b.zip");
    std::fs::write(&path, &bytes).unwrap();
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print(len(z.read('contacts.csv').decode().splitlines()))",
        ])
        .arg(&path)
        .output();
    std::fs::remove_dir_all(&dir).ok();
    let Ok(out) = out else {
        eprintln!("python3 not found; skipped");
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 500 rows, a third of them with an embedded newline, plus the header.
    let lines: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(lines, 1 + 500 + (500 - 500 / 3));
}

fn fails(bytes: &[u8]) -> String {
    match verify_reader(Cursor::new(bytes)) {
        Ok(_) => panic!("a damaged archive passed verification"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn damage_is_found() {
    let good = build(
        &[(
            "contacts",
            vec!["hs_object_id", "email", "secret"],
            rows(3000),
        )],
        small_chunks(),
    );
    // Any single flipped byte in the compressed data.
    for at in [200usize, 1000, good.len() / 2] {
        let mut bad = good.clone();
        bad[at] ^= 0x55;
        fails(&bad);
    }
    // Truncation.
    fails(&good[..good.len() - 10]);
    fails(&good[..good.len() / 2]);
}

#[test]
fn manifest_lies_are_found() {
    let data = rows(50);
    let cols = vec!["hs_object_id", "email", "secret"];
    let good = build(&[("contacts", cols.clone(), data.clone())], small_chunks());
    let manifest: Manifest = serde_json::from_slice(&read_entry(&good, MANIFEST_NAME)).unwrap();
    let rewrite = |m: &Manifest| -> Vec<u8> {
        // Same CSV, a different manifest.
        let mut w = ArchiveWriter::new(Cursor::new(Vec::new()), small_chunks()).unwrap();
        let mut e = w.csv("contacts.csv", &cols).unwrap();
        for r in &data {
            e.write_row(r).unwrap();
        }
        e.finish().unwrap();
        w.file(MANIFEST_NAME, &serde_json::to_vec(m).unwrap())
            .unwrap();
        w.finish().unwrap().into_inner()
    };
    assert!(verify_reader(Cursor::new(rewrite(&manifest))).is_ok());
    let mut m = manifest.clone();
    m.files[0].rows += 1;
    assert!(fails(&rewrite(&m)).contains("rows"));
    let mut m = manifest.clone();
    m.files[0].sha256 = "0".repeat(64);
    assert!(fails(&rewrite(&m)).contains("SHA-256"));
    let mut m = manifest.clone();
    m.files[0].properties.swap(1, 2);
    assert!(fails(&rewrite(&m)).contains("header"));
    let mut m = manifest.clone();
    m.format_version = 99;
    assert!(fails(&rewrite(&m)).contains("version"));
    let mut m = manifest.clone();
    m.files.clear();
    assert!(fails(&rewrite(&m)).contains("not in its manifest"));
    // Rows out of id order.
    let mut swapped = data.clone();
    swapped.swap(3, 4);
    let b = build(&[("contacts", cols.clone(), swapped)], small_chunks());
    assert!(fails(&b).contains("ascending"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_text_round_trips(
        values in proptest::collection::vec(("\\PC{0,20}", "[a-z,\"\\n\\r ]{0,12}"), 0..200),
        chunk in 1usize..300,
        threads in 1usize..4,
    ) {
        let data: Vec<Vec<String>> = values
            .iter()
            .enumerate()
            .map(|(i, (a, b))| vec![(i + 1).to_string(), a.clone(), b.clone()])
            .collect();
        let opts = WriterOptions { level: 1, threads, chunk_size: chunk };
        let bytes = build(&[("t", vec!["hs_object_id", "a", "b"], data.clone())], opts);
        let v = verify_reader(Cursor::new(&bytes)).unwrap();
        prop_assert_eq!(v.rows, data.len() as u64);
        let csv = read_entry(&bytes, "t.csv");
        let mut r = csv::ReaderBuilder::new().from_reader(&csv[..]);
        let back: Vec<Vec<String>> = r.records().map(|r| r.unwrap().iter().map(String::from).collect()).collect();
        prop_assert_eq!(back, data);
    }
}

/// Rows as `id|text` lines, formatted on the worker threads.
struct Lines;

impl RowFormatter for Lines {
    fn format(&self, batch: &[u8], out: &mut CsvRows) -> ArchiveResult<u64> {
        let mut n = 0;
        for line in batch.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let mut parts = line.splitn(2, |b| *b == b'|');
            out.write_record([parts.next().unwrap(), parts.next().unwrap_or(b"")]);
            n += 1;
        }
        Ok(n)
    }
}

#[test]
fn batches_formatted_on_workers_keep_their_order() {
    let formatter: std::sync::Arc<dyn RowFormatter> = std::sync::Arc::new(Lines);
    let mut w = ArchiveWriter::new(Cursor::new(Vec::new()), small_chunks()).unwrap();
    w.begin_csv("t.csv", &["hs_object_id", "text"]).unwrap();
    let mut expected = String::from("hs_object_id,text\n");
    let mut id = 0;
    for batch in 0..50 {
        let mut b = w.batch_buffer();
        for _ in 0..(batch % 7 + 1) {
            id += 1;
            b.extend_from_slice(format!("{id}|say \"hi\", {batch}\n").as_bytes());
            expected.push_str(&format!("{id},\"say \"\"hi\"\", {batch}\"\n"));
        }
        w.write_batch(b, formatter.clone()).unwrap();
        // Rows from this thread may follow batches.
        if batch % 10 == 9 {
            id += 1;
            w.write_row([id.to_string(), "direct".to_string()]).unwrap();
            expected.push_str(&format!("{id},direct\n"));
        }
    }
    let s = w.end_csv().unwrap();
    assert_eq!(s.rows, id as u64);
    assert_eq!(s.bytes, expected.len() as u64);
    w.file(MANIFEST_NAME, b"{}").unwrap();
    let bytes = w.finish().unwrap().into_inner();
    assert_eq!(
        String::from_utf8(read_entry(&bytes, "t.csv")).unwrap(),
        expected
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// Random damage — flipped bits anywhere, or a cut at any point — is either found by the
    /// check, or (a flip in bytes nothing reads, such as a zip comment) leaves every CSV byte
    /// exactly as written. Never a silent change of the data, never a panic.
    #[test]
    fn damage_is_found_or_harmless(
        flips in proptest::collection::vec((any::<proptest::sample::Index>(), 0u8..8), 0..4),
        cut in proptest::option::of(any::<proptest::sample::Index>()),
    ) {
        let data = rows(400);
        let good = build(
            &[("contacts", vec!["hs_object_id", "email", "secret"], data)],
            small_chunks(),
        );
        let want = read_entry(&good, "contacts.csv");
        let mut bad = good.clone();
        for (at, bit) in &flips {
            let i = at.index(bad.len());
            bad[i] ^= 1 << bit;
        }
        if let Some(at) = cut {
            bad.truncate(at.index(bad.len()));
        }
        if let Ok(v) = verify_reader(Cursor::new(&bad)) {
            prop_assert_eq!(v.rows, 400);
            prop_assert_eq!(read_entry(&bad, "contacts.csv"), want);
        }
    }
}
