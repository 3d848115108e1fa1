//! The administration commands as a shell user meets them.

mod common;

use std::io::Read;
use std::process::Stdio;

/// A listing piped into a reader that stops early (`kontor admin account list | head -1`)
/// ends quietly and successfully, as Unix tools do, not with a panic on the broken pipe.
#[test]
fn a_listing_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile_dir();
    for i in 0..3 {
        let out = common::kontor(&dir)
            .args([
                "admin",
                "account",
                "create",
                "--name",
                &format!("Piped {i}"),
            ])
            .args(["--region", "us", "--tier", "starter"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut child = common::kontor(&dir)
        .args(["admin", "account", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before reading anything.
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "kontor-cli-{}-{}",
        std::process::id(),
        kontor_domain::time::now_ms()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
