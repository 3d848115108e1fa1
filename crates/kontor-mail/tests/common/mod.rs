//! Helpers shared by the integration tests: a self-removing temporary folder and a reader for
//! the plain-text messages `Mailer` writes.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh folder under the system temp dir, removed (with its contents) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "kontor-mail-{label}-{}-{nanos}-{n}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The files directly inside `dir` whose name ends with `suffix` ("" for all).
pub fn files_in(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|p| p.is_file() && p.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}

/// A single-part message as a mail client would show it.
#[derive(Debug)]
pub struct ReadMessage {
    /// Header names and (unfolded) raw values, in order.
    pub headers: Vec<(String, String)>,
    /// The body with its transfer encoding undone and line ends as `\n`.
    pub body: String,
}

impl ReadMessage {
    /// Parses an RFC 5322 message with a 7bit, 8bit, quoted-printable or base64 text body.
    pub fn parse(raw: &[u8]) -> ReadMessage {
        let raw = String::from_utf8(raw.to_vec()).expect("messages are ASCII on the wire");
        let raw = raw.replace("\r\n", "\n");
        let (head, body) = raw
            .split_once("\n\n")
            .expect("a blank line after the headers");
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                let last = headers.last_mut().expect("continuation after a header");
                last.1.push_str(line);
            } else {
                let (name, value) = line.split_once(':').expect("header `name: value`");
                headers.push((name.to_owned(), value.trim().to_owned()));
            }
        }
        let mut message = ReadMessage {
            headers,
            body: String::new(),
        };
        let encoding = message
            .header("Content-Transfer-Encoding")
            .unwrap_or("7bit")
            .to_lowercase();
        let bytes = match encoding.as_str() {
            "7bit" | "8bit" => body.as_bytes().to_vec(),
            "quoted-printable" => decode_quoted_printable(body),
            "base64" => decode_base64(body),
            other => panic!("unexpected Content-Transfer-Encoding {other}"),
        };
        message.body = String::from_utf8(bytes)
            .expect("UTF-8 body")
            .replace("\r\n", "\n");
        message
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn decode_quoted_printable(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'=' {
            out.push(bytes[i]);
            i += 1;
        } else if bytes.get(i + 1) == Some(&b'\n') {
            i += 2; // soft line break
        } else {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex digits");
            out.push(u8::from_str_radix(hex, 16).expect("=XX escape"));
            i += 3;
        }
    }
    out
}

fn decode_base64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let value = ALPHABET.iter().position(|&a| a == c).expect("base64 digit") as u32;
        acc = (acc << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}
