//! The default transport: one `.eml` file per message in the outbox folder.

mod common;

use common::{files_in, ReadMessage, TempDir};
use kontor_mail::{MailConfig, MailError, Mailer, DEFAULT_FROM};

const BODY: &str = "Hallo Jürgen,\n\nthe deal „Acme Rollout“ was won: 12 500 €.\n\n— kontor\n";

#[tokio::test]
async fn send_writes_one_eml_file_with_recipient_subject_and_body() {
    let tmp = TempDir::new("outbox");
    let outbox = tmp.path().join("data").join("outbox"); // does not exist yet
    let cfg = MailConfig {
        from: "Kontor CRM <crm@example.com>".to_owned(),
        ..MailConfig::outbox(&outbox)
    };
    let mailer = Mailer::new(&cfg).expect("mailer");
    assert!(outbox.is_dir(), "Mailer::new creates the outbox folder");
    assert_eq!(mailer.describe(), format!("outbox {}", outbox.display()));

    mailer
        .clone()
        .send(
            "Jürgen Example <juergen@example.com>",
            "Deal won: Acme",
            BODY,
        )
        .await
        .unwrap();

    let files = files_in(&outbox, "");
    assert_eq!(files.len(), 1, "exactly one file: {files:?}");
    assert!(
        files[0].extension().is_some_and(|e| e == "eml"),
        "{files:?}"
    );
    let message = ReadMessage::parse(&std::fs::read(&files[0]).unwrap());
    let to = message.header("To").expect("To header");
    assert!(to.contains("<juergen@example.com>"), "To: {to}");
    assert_eq!(message.header("Subject"), Some("Deal won: Acme"));
    assert_eq!(
        message.header("From"),
        Some("\"Kontor CRM\" <crm@example.com>")
    );
    assert!(message
        .header("Content-Type")
        .unwrap()
        .starts_with("text/plain; charset=utf-8"));
    let id = message.header("Message-ID").expect("Message-ID");
    assert!(
        id.starts_with('<') && id.ends_with("@example.com>"),
        "Message-ID: {id}"
    );
    assert!(message.header("Date").is_some());
    assert_eq!(message.body.trim_end(), BODY.trim_end());
}

#[tokio::test]
async fn default_sender_and_recreated_outbox() {
    let tmp = TempDir::new("outbox-default");
    let outbox = tmp.path().join("outbox");
    let mailer = Mailer::new(&MailConfig::outbox(&outbox)).unwrap();
    std::fs::remove_dir(&outbox).unwrap(); // removed while the server runs
    mailer
        .send("ada@example.com", "Hello", "Plain ASCII body.")
        .await
        .unwrap();

    let files = files_in(&outbox, ".eml");
    assert_eq!(files.len(), 1);
    let message = ReadMessage::parse(&std::fs::read(&files[0]).unwrap());
    assert_eq!(message.header("From"), Some(DEFAULT_FROM));
    assert_eq!(message.header("To"), Some("ada@example.com"));
    assert_eq!(message.body, "Plain ASCII body.");
}

#[tokio::test]
async fn invalid_recipient_is_an_error_and_writes_nothing() {
    let tmp = TempDir::new("outbox-invalid");
    let mailer = Mailer::new(&MailConfig::outbox(tmp.path())).unwrap();
    for to in [
        "",
        "not an address",
        "ada@",
        "@example.com",
        "a@example.com, b@example.com",
    ] {
        let err = mailer.send(to, "Hi", "body").await.expect_err(to);
        assert!(
            matches!(err, MailError::InvalidRecipient { .. }),
            "{to:?}: {err:?}"
        );
        assert!(
            err.to_string().starts_with("invalid recipient address"),
            "{err}"
        );
    }
    assert!(files_in(tmp.path(), "").is_empty());
}

#[tokio::test]
async fn a_line_break_in_the_subject_cannot_add_headers() {
    let tmp = TempDir::new("outbox-inject");
    let mailer = Mailer::new(&MailConfig::outbox(tmp.path())).unwrap();
    let subject = "Hi\r\nBcc: victim@example.com";
    if mailer
        .send("ada@example.com", subject, "body")
        .await
        .is_err()
    {
        return; // refusing is fine too
    }
    let files = files_in(tmp.path(), ".eml");
    let message = ReadMessage::parse(&std::fs::read(&files[0]).unwrap());
    assert_eq!(message.header("Bcc"), None, "{:?}", message.headers);
    assert_eq!(message.body, "body");
}

#[test]
fn invalid_sender_is_rejected_by_new() {
    let tmp = TempDir::new("outbox-from");
    for from in ["", "kontor", "kontor <noreply>", "a@b.example, c@d.example"] {
        let cfg = MailConfig {
            from: from.to_owned(),
            ..MailConfig::outbox(tmp.path())
        };
        let err = Mailer::new(&cfg).expect_err(from);
        assert!(
            matches!(err, MailError::InvalidFrom { .. }),
            "{from:?}: {err:?}"
        );
        assert!(
            err.to_string()
                .starts_with(&format!("invalid sender address `{from}`")),
            "{err}"
        );
    }
}

#[test]
fn outbox_that_cannot_be_created_is_an_error() {
    let tmp = TempDir::new("outbox-file");
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let err = Mailer::new(&MailConfig::outbox(file.join("outbox"))).unwrap_err();
    assert!(matches!(err, MailError::Outbox { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("cannot create the outbox folder"),
        "{err}"
    );
}

/// A sender killed after sending a message and before recording it sends it again: in the
/// outbox the repeat replaces the first (found by the fault campaign, where a notification
/// e-mail was in the outbox twice).
#[tokio::test]
async fn a_message_sent_again_under_its_key_is_in_the_outbox_once() {
    let tmp = TempDir::new("outbox-once");
    let outbox = tmp.path().join("outbox");
    let mailer = Mailer::new(&MailConfig::outbox(&outbox)).unwrap();
    for _ in 0..3 {
        mailer
            .send_once(
                "notice-7-42",
                "ada@example.com",
                "Your backup is ready",
                BODY,
            )
            .await
            .unwrap();
    }
    let files = files_in(&outbox, "");
    assert_eq!(files.len(), 1, "one file, no temporary one left: {files:?}");
    assert!(files[0].ends_with("notice-7-42.eml"), "{files:?}");
    let message = ReadMessage::parse(&std::fs::read(&files[0]).unwrap());
    assert_eq!(
        message.header("Message-ID"),
        Some("<notice-7-42@localhost>")
    );
    assert_eq!(message.header("Subject"), Some("Your backup is ready"));
    assert_eq!(message.body.trim_end(), BODY.trim_end());
    // Another key is another message; a key is never a path.
    mailer
        .send_once(
            "notice-7-43",
            "ada@example.com",
            "Your import finished",
            BODY,
        )
        .await
        .unwrap();
    mailer
        .send_once("../escape", "ada@example.com", "Odd key", BODY)
        .await
        .unwrap();
    let mut names: Vec<String> = files_in(&outbox, "")
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [".._escape.eml", "notice-7-42.eml", "notice-7-43.eml"]
    );
    assert!(!tmp.path().join("escape.eml").exists());
}

#[tokio::test]
async fn parts_left_by_a_writer_that_died_are_removed_once_stale() {
    let tmp = TempDir::new("outbox-parts");
    let outbox = tmp.path().join("outbox");
    std::fs::create_dir_all(&outbox).unwrap();
    let old = outbox.join(".kontor-notice-1-2-3.0123.tmp");
    let fresh = outbox.join(".kontor-notice-1-2-4.4567.tmp");
    let mail = outbox.join("kept.eml");
    for p in [&old, &fresh, &mail] {
        std::fs::write(p, "part").unwrap();
    }
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    for p in [&old, &mail] {
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
    }
    Mailer::new(&MailConfig::outbox(&outbox)).expect("mailer");
    assert!(!old.exists(), "a stale part goes");
    assert!(fresh.exists(), "a part being written now stays");
    assert!(mail.exists(), "messages stay, however old");
}
