//! TLS to PostgreSQL: managed services require it. Runs when `KONTOR_TEST_POSTGRES_URL` points at
//! a server with TLS on and `KONTOR_TEST_POSTGRES_TLS_ROOT` names the certificate that signs it
//! (the test script's throwaway server has both).

use kontor_store::Store;
use sqlx::Connection;

fn settings() -> Option<(String, String)> {
    let url = std::env::var("KONTOR_TEST_POSTGRES_URL").ok()?;
    let root = std::env::var("KONTOR_TEST_POSTGRES_TLS_ROOT").ok()?;
    Some((url, root))
}

fn with(url: &str, params: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

async fn uses_tls(url: &str) -> bool {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let (ssl,): (bool,) =
        sqlx::query_as("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&mut conn)
            .await
            .expect("pg_stat_ssl");
    ssl
}

#[tokio::test]
async fn the_store_opens_over_tls_and_verifies_the_server() {
    let Some((url, root)) = settings() else {
        eprintln!("skipped: KONTOR_TEST_POSTGRES_URL / KONTOR_TEST_POSTGRES_TLS_ROOT not set");
        return;
    };
    // `sslmode=require`: encrypted, certificate not checked (what most managed services document).
    let require = with(&url, "sslmode=require");
    let store = Store::open(&require)
        .await
        .expect("store opens with sslmode=require");
    store.ping().await.expect("ping over TLS");
    assert!(uses_tls(&require).await, "sslmode=require is encrypted");

    // `verify-full` with the server's root: encrypted and the name checked.
    let verified = with(&url, &format!("sslmode=verify-full&sslrootcert={root}"));
    Store::open(&verified)
        .await
        .expect("store opens with verify-full and the right root")
        .ping()
        .await
        .unwrap();
    assert!(uses_tls(&verified).await);

    // `verify-full` against the public roots: the self-signed server is refused.
    let unverifiable = with(&url, "sslmode=verify-full");
    assert!(
        Store::open(&unverifiable).await.is_err(),
        "a certificate no trusted root signs is refused"
    );

    // Without asking, the client still prefers TLS when the server offers it.
    assert!(
        uses_tls(&url).await,
        "sslmode=prefer takes TLS when offered"
    );
}
