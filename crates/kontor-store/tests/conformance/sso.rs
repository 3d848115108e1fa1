//! Single sign-on settings and sign-ins in flight.

use kontor_domain::{Region, Tier};
use kontor_store::{Directory, SsoConfig};

fn config(secret: &str, required: bool) -> SsoConfig {
    SsoConfig {
        issuer: "https://idp.example.com".into(),
        client_id: "kontor".into(),
        client_secret_sealed: secret.into(),
        domains: vec!["example.com".into(), "example.org".into()],
        required,
        updated_at: 0,
    }
}

pub async fn sso_settings_and_single_use_states(d: Directory) {
    let a = d
        .create_account("sso", Region::Us, Tier::Starter)
        .await
        .unwrap();
    let b = d
        .create_account("sso other", Region::Us, Tier::Starter)
        .await
        .unwrap();
    let s = d.cell(&a).unwrap().clone();
    assert!(s.sso_config(a.id).await.unwrap().is_none());
    assert!(
        s.set_sso_config(a.id, None, &config("", false))
            .await
            .is_err(),
        "the first save needs a secret"
    );
    s.set_sso_config(a.id, None, &config("sealed-1", false))
        .await
        .unwrap();
    // An empty secret keeps the stored one.
    s.set_sso_config(a.id, None, &config("", true))
        .await
        .unwrap();
    let got = s.sso_config(a.id).await.unwrap().unwrap();
    assert_eq!(got.client_secret_sealed, "sealed-1");
    assert!(got.required);
    assert_eq!(got.domains, vec!["example.com", "example.org"]);
    assert!(got.allows("Ann@Example.COM"));
    assert!(!got.allows("ann@sub.example.com"));
    assert!(!got.allows("ann@example.com.evil.net"));
    assert!(!got.allows("no-at-sign"));
    assert!(s.sso_config(b.id).await.unwrap().is_none(), "per account");

    let state = format!("{}.abc", a.id);
    s.begin_sso_flow(a.id, &state, "nonce", "verifier")
        .await
        .unwrap();
    assert!(
        s.take_sso_flow(b.id, &state).await.unwrap().is_none(),
        "another account cannot take it"
    );
    let flow = s.take_sso_flow(a.id, &state).await.unwrap().unwrap();
    assert_eq!(
        (flow.nonce.as_str(), flow.verifier.as_str()),
        ("nonce", "verifier")
    );
    assert!(
        s.take_sso_flow(a.id, &state).await.unwrap().is_none(),
        "a state is used once"
    );
    assert!(s
        .take_sso_flow(a.id, "never.issued")
        .await
        .unwrap()
        .is_none());

    s.delete_sso_config(a.id).await.unwrap();
    assert!(s.sso_config(a.id).await.unwrap().is_none());
}

pub async fn sso_states_in_flight_are_bounded(d: Directory) {
    let a = d
        .create_account("sso bound", Region::Us, Tier::Starter)
        .await
        .unwrap();
    let s = d.cell(&a).unwrap().clone();
    for i in 0..kontor_store::MAX_SSO_FLOWS {
        s.begin_sso_flow(a.id, &format!("{}.{i}", a.id), "n", "v")
            .await
            .unwrap();
    }
    let over = s
        .begin_sso_flow(a.id, &format!("{}.over", a.id), "n", "v")
        .await;
    assert!(
        matches!(over, Err(kontor_store::StoreError::Conflict { .. })),
        "{over:?}"
    );
    // Taking one frees a place.
    assert!(s
        .take_sso_flow(a.id, &format!("{}.0", a.id))
        .await
        .unwrap()
        .is_some());
    s.begin_sso_flow(a.id, &format!("{}.over", a.id), "n", "v")
        .await
        .unwrap();
}
