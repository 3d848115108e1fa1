//! Sessions, second factors, recovery codes, and the count of guesses at a secret.

use kontor_domain::{Region, Role, Tier};
use kontor_store::{Directory, Factor, ATTEMPT_WINDOW_MS, MAX_ATTEMPTS};

pub async fn sessions_and_second_factors(d: Directory) {
    let a = d
        .create_account("sessions", Region::Us, Tier::Starter)
        .await
        .unwrap();
    let s = d.cell(&a).unwrap().clone();
    let u = d
        .create_user(
            &a,
            "Sam@Example.com",
            "Sam",
            "",
            Role::Admin,
            "a long password",
        )
        .await
        .unwrap();
    assert_eq!(
        d.accounts_for_login("sam@example.com").await.unwrap(),
        vec![a.id]
    );
    let token = s
        .create_session(a.id, u.id, kontor_store::AuthMethod::Password, true)
        .await
        .unwrap();
    let sess = s.session(&token).await.unwrap().unwrap();
    assert!(sess.pending_second_factor && sess.csrf.len() >= 32);
    s.session_second_factor(&token).await.unwrap();
    let sess = s.session(&token).await.unwrap().unwrap();
    assert_eq!(
        (sess.pending_second_factor, sess.auth_method),
        (false, kontor_store::AuthMethod::PasswordTotp)
    );
    assert!(s.session("100001.deadbeef").await.unwrap().is_none());
    s.begin_second_factor(a.id, u.id, "sealed").await.unwrap();
    let codes = s.enable_second_factor(a.id, u.id).await.unwrap();
    assert_eq!(codes.len(), 10);
    assert!(s.use_recovery_code(a.id, u.id, &codes[0]).await.unwrap());
    assert!(
        !s.use_recovery_code(a.id, u.id, &codes[0]).await.unwrap(),
        "a recovery code works once"
    );
    assert!(
        s.begin_second_factor(a.id, u.id, "again").await.is_err(),
        "an enabled factor is not replaced silently"
    );
    s.set_active(a.id, u.id, false).await.unwrap();
    assert!(
        s.session(&token).await.unwrap().is_none(),
        "deactivation ends sessions"
    );
    let n = s
        .notify(
            a.id,
            u.id,
            "Backup ready",
            "Your backup is ready.",
            Some("/app"),
        )
        .await
        .unwrap();
    assert!(!s.notifications(a.id, u.id, 10).await.unwrap()[0].read);
    s.mark_notifications_read(a.id, u.id, Some(n))
        .await
        .unwrap();
    assert!(s.notifications(a.id, u.id, 10).await.unwrap()[0].read);
    let entries = s
        .audit_log(a.id, Some(u.id), Some("user."), None, None, 10)
        .await
        .unwrap();
    assert!(entries.iter().any(|e| e.action == "user.2fa_enabled"));
}

/// A subject no other test (or earlier run on the same PostgreSQL) uses.
fn fresh(name: &str) -> String {
    format!(
        "{name}-{}-{}",
        std::process::id(),
        kontor_domain::time::now_ms()
    )
}

pub async fn attempts_are_counted_before_checking(d: Directory) {
    let alice = kontor_store::email_subject(&format!("{}@Example.com", fresh("alice")));
    let bob = kontor_store::email_subject(&format!("{}@example.com", fresh("bob")));
    // Concurrent guesses: exactly the allowance is reserved, whatever the interleaving.
    let tries: Vec<_> = (0..40)
        .map(|_| {
            let d = d.clone();
            let subject = alice.clone();
            tokio::spawn(
                async move { d.reserve_attempt(&subject, Factor::Password).await.unwrap() },
            )
        })
        .collect();
    let mut allowed = 0;
    let mut until = None;
    for t in tries {
        match t.await.unwrap() {
            Ok(()) => allowed += 1,
            Err(u) => until = Some(u),
        }
    }
    assert_eq!(
        allowed, MAX_ATTEMPTS,
        "40 concurrent guesses, {allowed} let through"
    );
    let until = until.expect("the rest are refused with the instant the lock ends");
    let now = kontor_domain::time::now_ms();
    assert!(
        until > now && until <= now + ATTEMPT_WINDOW_MS,
        "{until} vs {now}"
    );
    assert_eq!(
        d.attempts_locked_until(&alice, Factor::Password)
            .await
            .unwrap(),
        Some(until)
    );
    // Each factor and subject has its own count.
    assert!(d
        .reserve_attempt(&alice, Factor::SecondFactor)
        .await
        .unwrap()
        .is_ok());
    assert!(d
        .reserve_attempt(&bob, Factor::Password)
        .await
        .unwrap()
        .is_ok());
    // A success clears only its own factor's count.
    d.clear_attempts(&alice, Factor::SecondFactor)
        .await
        .unwrap();
    assert!(d
        .attempts_locked_until(&alice, Factor::Password)
        .await
        .unwrap()
        .is_some());
    d.clear_attempts(&alice, Factor::Password).await.unwrap();
    assert!(d
        .reserve_attempt(&alice, Factor::Password)
        .await
        .unwrap()
        .is_ok());
    // Counts past their window go at housekeeping, and only those.
    let later = now + 2 * ATTEMPT_WINDOW_MS;
    assert!(d.purge_old_attempts(later).await.unwrap() >= 2);
    assert!(d
        .attempts_locked_until(&alice, Factor::Password)
        .await
        .unwrap()
        .is_none());
}

pub async fn recovery_codes_spend_once_under_concurrency(d: Directory) {
    let a = d
        .create_account("recovery", Region::Us, Tier::Starter)
        .await
        .unwrap();
    let s = d.cell(&a).unwrap().clone();
    let u = d
        .create_user(
            &a,
            &format!("{}@example.com", fresh("rc")),
            "R",
            "C",
            Role::User,
            "a long password",
        )
        .await
        .unwrap();
    s.begin_second_factor(a.id, u.id, "sealed").await.unwrap();
    let codes = s.enable_second_factor(a.id, u.id).await.unwrap();
    assert_eq!(codes.len(), 10);
    for c in &codes {
        // 16 characters of a 32-letter alphabet: 80 bits, in groups of four.
        assert_eq!(c.len(), 19, "{c}");
        assert_eq!(
            c.chars().filter(|ch| ch.is_ascii_alphanumeric()).count(),
            16,
            "{c}"
        );
    }
    let spends: Vec<_> = (0..20)
        .map(|_| {
            let s = s.clone();
            let code = codes[3].clone();
            tokio::spawn(async move { s.use_recovery_code(a.id, u.id, &code).await.unwrap() })
        })
        .collect();
    let mut spent = 0;
    for t in spends {
        spent += t.await.unwrap() as usize;
    }
    assert_eq!(
        spent, 1,
        "one recovery code, spent {spent} times concurrently"
    );
    // Typed in capitals without dashes, another code still works once.
    let typed = codes[5].replace('-', " ").to_uppercase();
    assert!(s.use_recovery_code(a.id, u.id, &typed).await.unwrap());
    assert!(!s.use_recovery_code(a.id, u.id, &codes[5]).await.unwrap());
    assert_eq!(
        s.second_factor(a.id, u.id)
            .await
            .unwrap()
            .unwrap()
            .recovery_codes_left,
        8
    );
    assert!(!s.use_recovery_code(a.id, u.id, "").await.unwrap());
    // Turned off, no code works.
    assert!(s.remove_second_factor(a.id, u.id).await.unwrap());
    assert!(!s.use_recovery_code(a.id, u.id, &codes[0]).await.unwrap());
}

pub async fn password_reset_links_are_single_use(d: Directory) {
    let a = d
        .create_account("resets", Region::Us, Tier::Starter)
        .await
        .unwrap();
    let s = d.cell(&a).unwrap().clone();
    let u = d
        .create_user(
            &a,
            "reset@example.com",
            "",
            "",
            Role::User,
            "the old password",
        )
        .await
        .unwrap();
    let session = s
        .create_session(a.id, u.id, kontor_store::AuthMethod::Password, false)
        .await
        .unwrap();

    // Ten concurrent uses of one link: exactly one sets the password.
    let link = s.create_password_reset(a.id, u.id).await.unwrap();
    assert_eq!(
        s.password_reset_user(&link).await.unwrap(),
        Some((a.id, u.id))
    );
    let mut uses = Vec::new();
    for i in 0..10 {
        let (s, link) = (s.clone(), link.clone());
        uses.push(tokio::spawn(async move {
            s.reset_password(&link, &format!("new password {i}"))
                .await
                .unwrap()
        }));
    }
    let mut set = Vec::new();
    for (i, h) in uses.into_iter().enumerate() {
        if h.await.unwrap().is_some() {
            set.push(i);
        }
    }
    assert_eq!(set.len(), 1, "uses that set the password: {set:?}");
    let winner = format!("new password {}", set[0]);
    assert!(s
        .authenticate(a.id, "reset@example.com", &winner)
        .await
        .unwrap()
        .is_some());
    assert!(s
        .authenticate(a.id, "reset@example.com", "the old password")
        .await
        .unwrap()
        .is_none());
    assert!(
        s.password_reset_user(&link).await.unwrap().is_none(),
        "spent"
    );
    assert!(
        s.session(&session).await.unwrap().is_none(),
        "sessions ended"
    );

    // A weak password spends nothing; a changed password ends the open links.
    let link = s.create_password_reset(a.id, u.id).await.unwrap();
    assert!(s.reset_password(&link, "short").await.is_err());
    assert!(s.password_reset_user(&link).await.unwrap().is_some());
    let keep = s
        .create_session(a.id, u.id, kontor_store::AuthMethod::Password, false)
        .await
        .unwrap();
    let other = s
        .create_session(a.id, u.id, kontor_store::AuthMethod::Password, false)
        .await
        .unwrap();
    s.change_password(a.id, u.id, "a third password", Some(&keep))
        .await
        .unwrap();
    assert!(s.password_reset_user(&link).await.unwrap().is_none());
    assert!(s.session(&keep).await.unwrap().is_some());
    assert!(s.session(&other).await.unwrap().is_none());

    // An admin's reset: no password works until a link sets one.
    s.lock_password(a.id, u.id).await.unwrap();
    assert!(s
        .authenticate(a.id, "reset@example.com", "a third password")
        .await
        .unwrap()
        .is_none());
    assert!(s.session(&keep).await.unwrap().is_none());
    let link = s.create_password_reset(a.id, u.id).await.unwrap();
    assert!(s
        .reset_password(&link, "a fourth password")
        .await
        .unwrap()
        .is_some());

    // Links past their time are refused and swept.
    let old = s.create_password_reset(a.id, u.id).await.unwrap();
    let later = kontor_domain::time::now_ms() + kontor_store::PASSWORD_RESET_TTL_MS + 1;
    assert!(s.purge_expired_password_resets(later).await.unwrap() >= 1);
    assert!(s.password_reset_user(&old).await.unwrap().is_none());
    // Another account's store does not know the link's user.
    assert!(s
        .reset_password("999.abc", "a fifth password!")
        .await
        .unwrap()
        .is_none());
}
