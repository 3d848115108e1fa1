//! Accounts in the directory.

use kontor_domain::{Region, Tier};
use kontor_store::{Directory, StoreError};

/// Names show in consoles, listings and e-mail subjects: one line of plain text, checked on
/// creation and on renaming alike.
pub async fn account_names_are_one_line_of_text(d: Directory) {
    for bad in [
        "",
        "   ",
        "Acme\r\nBcc: all@example.com",
        "Acme\u{1b}[2J",
        "gpj.\u{202E}exe",
    ] {
        let err = d
            .create_account(bad, Region::Us, Tier::Starter)
            .await
            .expect_err(bad);
        assert!(
            matches!(&err, StoreError::Validation { code, .. } if code == "INVALID_NAME"),
            "{bad:?}: {err:?}"
        );
    }
    let a = d
        .create_account("  Acme Ünïcödé  ", Region::Us, Tier::Starter)
        .await
        .unwrap();
    assert_eq!(a.name, "Acme Ünïcödé");
    assert!(d.rename_account(a.id, "Acme\nLtd").await.is_err());
    assert!(d.rename_account(a.id, &"x".repeat(201)).await.is_err());
    d.rename_account(a.id, &"é".repeat(200)).await.unwrap();
    assert_eq!(
        d.account(a.id).await.unwrap().unwrap().name,
        "é".repeat(200)
    );
}
