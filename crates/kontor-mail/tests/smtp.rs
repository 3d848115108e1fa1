//! SMTP delivery against a real SMTP server: aiosmtpd (the asyncio SMTP server package), run as
//! `python3 -m aiosmtpd` and storing what it receives in a maildir.
//!
//! Needs `python3` with aiosmtpd: `python3 -m pip install aiosmtpd`, or for Debian's system
//! Python `apt-get install -y python3-aiosmtpd`. Without it the test fails and says so.
//! `KONTOR_TEST_SKIP_SMTP=1` skips the test that needs the server (with a notice).

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{files_in, ReadMessage, TempDir};
use kontor_mail::{MailConfig, MailError, Mailer};

const INSTALL_HINT: &str = "install it with `python3 -m pip install aiosmtpd` \
     (for Debian's system Python: `apt-get install -y python3 python3-aiosmtpd`), \
     or set KONTOR_TEST_SKIP_SMTP=1 to skip this test";

/// A running aiosmtpd; killed when dropped, also when the test panics.
struct SmtpServer {
    child: Child,
    addr: SocketAddr,
    maildir: PathBuf,
    log: PathBuf,
}

impl SmtpServer {
    /// Starts aiosmtpd on a free local port and waits until it accepts connections. `None`
    /// (after printing a notice) when KONTOR_TEST_SKIP_SMTP=1.
    fn start(tmp: &Path) -> Option<SmtpServer> {
        if std::env::var("KONTOR_TEST_SKIP_SMTP").is_ok_and(|v| v == "1") {
            eprintln!("SKIPPED: SMTP delivery test against aiosmtpd (KONTOR_TEST_SKIP_SMTP=1)");
            return None;
        }
        if let Err(problem) = aiosmtpd_available() {
            panic!("the SMTP test needs a real SMTP server: {problem}; {INSTALL_HINT}");
        }
        let addr = free_local_port();
        let maildir = tmp.join("maildir");
        let log = tmp.join("aiosmtpd.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &addr.to_string()])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start python3 -m aiosmtpd: {e}; {INSTALL_HINT}"));
        let mut server = SmtpServer {
            child,
            addr,
            maildir,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!(
                    "aiosmtpd exited ({status}) before listening:\n{}",
                    server.log_text()
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Some(server);
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd not listening on {addr} after 15 s:\n{}",
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The messages in the maildir's `new/`, waiting briefly for the first one.
    fn received(&self) -> Vec<PathBuf> {
        let new = self.maildir.join("new");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let files = if new.is_dir() {
                files_in(&new, "")
            } else {
                Vec::new()
            };
            if !files.is_empty() || Instant::now() > deadline {
                return files;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `Ok` when `python3 -c "import aiosmtpd"` works, else what is missing.
fn aiosmtpd_available() -> Result<(), String> {
    match Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => Ok(()),
        Ok(_) => Err("the Python package aiosmtpd is not installed".to_owned()),
        Err(e) => Err(format!("python3 cannot be run ({e})")),
    }
}

/// A local address with a port that was free a moment ago (and is closed now).
fn free_local_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn send_through_a_real_smtp_server() {
    let tmp = TempDir::new("smtp");
    let Some(server) = SmtpServer::start(tmp.path()) else {
        return;
    };
    let url = format!("smtp://{}/kontor.test", server.addr);
    let cfg = MailConfig {
        from: "Kontor CRM <crm@example.com>".to_owned(),
        smtp_url: Some(url.clone()),
        outbox_dir: tmp.path().join("unused-outbox"),
    };
    let mailer = Mailer::new(&cfg).unwrap();
    assert_eq!(mailer.describe(), url);
    assert!(!cfg.outbox_dir.exists(), "no outbox with SMTP");

    let body = "Hallo Jürgen,\n\nyour task „Call Acme“ is due today.\n";
    mailer
        .send("Jürgen <juergen@example.com>", "Task due: Call Acme", body)
        .await
        .unwrap();

    let files = server.received();
    assert_eq!(
        files.len(),
        1,
        "one message in the maildir; server log:\n{}",
        server.log_text()
    );
    let message = ReadMessage::parse(&std::fs::read(&files[0]).unwrap());
    let to = message.header("To").expect("To");
    assert!(to.contains("<juergen@example.com>"), "To: {to}");
    assert_eq!(message.header("Subject"), Some("Task due: Call Acme"));
    assert_eq!(
        message.header("From"),
        Some("\"Kontor CRM\" <crm@example.com>")
    );
    // The envelope, as aiosmtpd recorded it.
    assert_eq!(message.header("X-MailFrom"), Some("crm@example.com"));
    assert_eq!(message.header("X-RcptTo"), Some("juergen@example.com"));
    assert_eq!(message.body.trim_end(), body.trim_end());

    // aiosmtpd offers no STARTTLS here: a mailer that requires it must fail, not fall back to
    // plain text.
    let cfg = MailConfig {
        smtp_url: Some(format!("smtp://{}?tls=starttls", server.addr)),
        ..cfg
    };
    let err = Mailer::new(&cfg)
        .unwrap()
        .send("ada@example.com", "Secret", "body")
        .await
        .unwrap_err();
    assert!(matches!(err, MailError::Smtp { .. }), "{err:?}");
    assert_eq!(server.received().len(), 1, "nothing more delivered");
}

#[tokio::test]
async fn unreachable_smtp_server_is_a_prompt_error() {
    let addr = free_local_port(); // nothing listens there any more
    let cfg = MailConfig {
        smtp_url: Some(format!("smtp://{addr}")),
        ..MailConfig::outbox("/nonexistent/outbox")
    };
    let mailer = Mailer::new(&cfg).unwrap();
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        mailer.send("ada@example.com", "Hello", "body"),
    )
    .await
    .expect("send gives up within 10 s");
    let err = result.expect_err("nothing listens");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, MailError::Smtp { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("SMTP delivery via smtp://{addr} failed")),
        "{err}"
    );
}
