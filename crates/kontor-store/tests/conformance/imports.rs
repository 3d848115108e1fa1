//! Imports waiting on disk are bounded per account.

use crate::{account, new_import};
use kontor_store::imports::{MAX_OPEN_IMPORTS, SOURCE_API, SOURCE_RESTORE, SOURCE_UI};
use kontor_store::{Directory, StoreError};

/// An account may have `MAX_OPEN_IMPORTS` file imports waiting or running; one more is
/// refused with a time to retry, until one ends. Restores and other accounts are not counted.
pub async fn open_imports_are_capped_per_account(d: Directory) {
    let (a, s) = account(&d, "many imports").await;
    let (b, s2) = account(&d, "other importer").await;
    let mut open = Vec::new();
    for i in 0..MAX_OPEN_IMPORTS {
        let source = if i % 2 == 0 { SOURCE_API } else { SOURCE_UI };
        open.push(new_import(&s, a, source, None).await.unwrap());
    }
    match new_import(&s, a, SOURCE_API, None).await {
        Err(StoreError::TooSoon { message, retry_at }) => {
            assert!(message.contains("waiting or running"), "{message}");
            assert!(retry_at > kontor_domain::time::now_ms());
        }
        other => panic!("one import over the cap was not refused: {other:?}"),
    }
    new_import(&s2, b, SOURCE_API, None)
        .await
        .expect("another account is not held up");
    new_import(&s, a, SOURCE_RESTORE, None)
        .await
        .expect("a restore is not a file upload");
    s.cancel_import(a, open[0].id).await.unwrap();
    new_import(&s, a, SOURCE_API, None)
        .await
        .expect("room again once one has ended");
}
