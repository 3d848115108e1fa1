//! Users and API tokens.

use super::*;

pub async fn users_and_tokens(d: Directory) {
    let (a, s) = account(&d, "auth").await;
    let u = s
        .create_user(
            a,
            "Root@Example.com",
            "Root",
            "User",
            Role::SuperAdmin,
            "correct horse battery",
        )
        .await
        .unwrap();
    assert_eq!(u.email, "root@example.com");
    assert!(s
        .authenticate(a, "root@example.com", "correct horse battery")
        .await
        .unwrap()
        .is_some());
    assert!(s
        .authenticate(a, "root@example.com", "wrong password!")
        .await
        .unwrap()
        .is_none());
    assert!(s
        .create_user(a, "x@example.com", "", "", Role::User, "short")
        .await
        .is_err());
    assert!(matches!(
        s.create_user(a, "root@example.com", "", "", Role::User, "long enough pw")
            .await,
        Err(StoreError::Conflict { .. })
    ));
    let owner = s
        .owner(a, u.id, true, false)
        .await
        .unwrap()
        .expect("a user is also an owner");
    assert_eq!(owner.email, "root@example.com");
    let (t, secret) = s.create_token(a, "ci", Some(u.id)).await.unwrap();
    assert_eq!(kontor_store::token_account(&secret), Some(a));
    assert_eq!(s.verify_token(a, &secret).await.unwrap().unwrap().id, t.id);
    let (b, _) = account(&d, "auth-b").await;
    assert!(
        s.verify_token(b, &secret).await.unwrap().is_none(),
        "a token works only for its account"
    );
    s.revoke_token(a, t.id, Some(u.id)).await.unwrap();
    assert!(s.verify_token(a, &secret).await.unwrap().is_none());
    let actions: Vec<String> = s
        .audit_entries(a, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.4)
        .collect();
    assert!(
        actions.contains(&"token.revoke".to_string())
            && actions.contains(&"token.create".to_string())
    );
}

pub async fn tokens_live_only_while_their_creator_holds_the_role(d: Directory) {
    let (a, s) = account(&d, "token-life").await;
    let boss = s
        .create_user(
            a,
            "boss@example.com",
            "",
            "",
            Role::SuperAdmin,
            "long enough pw",
        )
        .await
        .unwrap();
    let (t, secret) = s.create_token(a, "sync", Some(boss.id)).await.unwrap();
    assert_eq!(t.created_role, Some(Role::SuperAdmin));
    let live = |s: Store, secret: String| async move {
        s.verify_token(a, &secret).await.unwrap().is_some()
    };
    assert!(live(s.clone(), secret.clone()).await);
    s.set_role(a, boss.id, Role::Admin).await.unwrap();
    assert!(
        !live(s.clone(), secret.clone()).await,
        "demoted below the role it was made with"
    );
    s.set_role(a, boss.id, Role::SuperAdmin).await.unwrap();
    assert!(live(s.clone(), secret.clone()).await);
    s.set_active(a, boss.id, false).await.unwrap();
    assert!(
        !live(s.clone(), secret.clone()).await,
        "its creator is deactivated"
    );
    assert!(
        s.create_token(a, "again", Some(boss.id)).await.is_err(),
        "a deactivated user makes no tokens"
    );
    // An admin's token survives a promotion, and the operator's tokens have no creator.
    let admin = s
        .create_user(
            a,
            "admin@example.com",
            "",
            "",
            Role::Admin,
            "long enough pw",
        )
        .await
        .unwrap();
    let (t2, secret2) = s.create_token(a, "admin's", Some(admin.id)).await.unwrap();
    s.set_role(a, admin.id, Role::SuperAdmin).await.unwrap();
    assert!(live(s.clone(), secret2.clone()).await);
    let (op, op_secret) = s.create_token(a, "operator's", None).await.unwrap();
    assert!(live(s.clone(), op_secret).await);
    // Who may revoke: at least the role the token was made with.
    assert!(!t.revocable_by(Role::Admin) && t.revocable_by(Role::SuperAdmin));
    assert!(t2.revocable_by(Role::Admin) && !t2.revocable_by(Role::User));
    assert!(!op.revocable_by(Role::Admin) && op.revocable_by(Role::SuperAdmin));
}
