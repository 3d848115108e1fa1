//! Parsing of the SMTP URL, seen through `Mailer::new` and `Mailer::describe` (no connection is
//! made: `new` only checks the configuration).

use kontor_mail::{MailConfig, MailError, Mailer};

fn config(url: &str) -> MailConfig {
    MailConfig {
        smtp_url: Some(url.to_owned()),
        ..MailConfig::outbox("/nonexistent/outbox")
    }
}

fn describe(url: &str) -> String {
    Mailer::new(&config(url))
        .unwrap_or_else(|e| panic!("{url}: {e}"))
        .describe()
}

/// The error message for `url`, which must be rejected as an invalid SMTP URL.
fn rejection(url: &str) -> String {
    let err = Mailer::new(&config(url)).expect_err(url);
    assert!(
        matches!(err, MailError::InvalidSmtpUrl(_)),
        "{url}: {err:?}"
    );
    err.to_string()
}

#[test]
fn schemes_tls_modes_and_default_ports() {
    assert_eq!(describe("smtp://relay.local"), "smtp://relay.local:25");
    assert_eq!(describe("smtp://127.0.0.1:2525"), "smtp://127.0.0.1:2525");
    assert_eq!(
        describe("smtp://mail.example.com?tls=starttls"),
        "smtp://mail.example.com:587?tls=starttls"
    );
    assert_eq!(
        describe("smtp://mail.example.com:2587/?tls=starttls"),
        "smtp://mail.example.com:2587?tls=starttls"
    );
    assert_eq!(
        describe("smtps://mail.example.com"),
        "smtps://mail.example.com:465"
    );
    assert_eq!(
        describe("smtps://mail.example.com:10465"),
        "smtps://mail.example.com:10465"
    );
    assert_eq!(describe("smtp://[::1]:25"), "smtp://[::1]:25");
    assert_eq!(
        describe("  smtp://relay.local:25/crm.example.com  "),
        "smtp://relay.local:25/crm.example.com"
    );
}

#[test]
fn password_is_redacted_in_describe_debug_and_errors() {
    let secret = "s3cr%40t:pw"; // percent-encoded `s3cr@t:pw`
    let url = format!("smtps://alice%40example.com:{secret}@mail.example.com");
    let mailer = Mailer::new(&config(&url)).unwrap();
    assert_eq!(
        mailer.describe(),
        "smtps://alice@example.com:***@mail.example.com:465"
    );
    assert!(!format!("{mailer:?}").contains("s3cr"), "{mailer:?}");
    assert!(
        !format!("{:?}", config(&url)).contains("s3cr"),
        "{:?}",
        config(&url)
    );
    assert_eq!(
        describe("smtp://bob@relay.local?tls=starttls"),
        "smtp://bob@relay.local:587?tls=starttls"
    );

    let bad = format!("smtp://alice:{secret}@mail.example.com?tls=yes");
    assert!(!rejection(&bad).contains("s3cr"));
    assert!(!format!("{:?}", config(&bad)).contains("s3cr"));
}

#[test]
fn bad_scheme_is_rejected() {
    for url in [
        "http://mail.example.com",
        "smtp+tls://mail.example.com",
        "submission://x",
    ] {
        let msg = rejection(url);
        assert!(
            msg.contains("unsupported scheme") && msg.contains("smtp:// or smtps://"),
            "{msg}"
        );
    }
    assert!(rejection("mail.example.com:25").contains("unsupported scheme `mail.example.com`"));
    assert!(rejection("").starts_with("invalid SMTP URL: "));
}

#[test]
fn missing_host_is_rejected() {
    for url in [
        "smtp://",
        "smtp:///",
        "smtp://:25",
        "smtps://user:pw@",
        "smtp:relay",
    ] {
        let msg = rejection(url);
        assert!(msg.contains("host"), "{url}: {msg}");
    }
}

#[test]
fn bad_parameters_are_rejected() {
    assert!(rejection("smtp://relay?tls=required").contains("unsupported `tls=required`"));
    assert!(rejection("smtps://relay?tls=starttls").contains("already uses TLS"));
    assert!(rejection("smtp://relay?timeout=5").contains("unknown parameter `timeout`"));
    assert!(rejection("smtp://relay:99999").starts_with("invalid SMTP URL: "));
    assert!(rejection("smtp://:pw@relay").contains("needs a user name"));
    assert!(rejection("smtp://%FF:pw@relay").contains("not UTF-8"));
}
