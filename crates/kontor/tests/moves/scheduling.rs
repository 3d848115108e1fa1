//! The scheduling rules of data moves, through the API and the CLI.

use super::*;

/// The scheduling rules, through the API and the CLI: a date with room at least 7 days ahead,
/// US → EU only, no account that uses payments, one open move at a time, cancelling until
/// 36 hours before the start (here 72, through the configuration), super admins only, and
/// imports refused from 24 hours before the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduling_follows_the_rules() {
    use common::console::{console_token, sign_in, user};
    let s = Server::start().await;
    let (account, operator) = s.account("scheduling");
    // An admin (not a super admin) is refused.
    let (_, pw) = user(&s, &account, "admin@moves.test", "admin");
    let session = sign_in(&s, "admin@moves.test", &pw).await;
    let admin = console_token(&s, &session, "admin's").await;
    let (status, v) = s.call(&admin, "GET", "/kontor/v1/migrations", None).await;
    assert_eq!(status, 403, "{v}");

    let (status, v) = s
        .call(&operator, "GET", "/kontor/v1/migrations", None)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["region"].as_str(), v["canSchedule"].as_bool()),
        (Some("us"), Some(true))
    );
    let dates: Vec<String> = v["availableDates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    let today = kontor_domain::time::now_ms();
    let day = |d: &str| kontor_domain::time::parse_instant(d).unwrap();
    assert!(dates.len() > 30);
    assert!(dates
        .iter()
        .all(|d| day(d) + 2 * 3_600_000 >= today + 7 * 86_400_000));
    let schedule = |date: String, to: &'static str| {
        let (s, operator) = (&s, operator.clone());
        async move {
            s.call(
                &operator,
                "POST",
                "/kontor/v1/migrations",
                Some(json!({"to": to, "date": date})),
            )
            .await
        }
    };
    let tomorrow = kontor_domain::time::date_string(today + 86_400_000).unwrap();
    let (status, v) = schedule(tomorrow, "eu").await;
    assert_eq!(
        (status, v["errors"][0]["code"].as_str()),
        (400, Some("TOO_SOON")),
        "{v}"
    );
    let (status, v) = schedule(dates[0].clone(), "us").await;
    assert_eq!(
        (status, v["errors"][0]["code"].as_str()),
        (400, Some("ALREADY_THERE")),
        "{v}"
    );
    let (status, v) = schedule("someday".into(), "eu").await;
    assert_eq!(
        (status, v["errors"][0]["code"].as_str()),
        (400, Some("INVALID_DATE")),
        "{v}"
    );

    let (status, mv) = schedule(dates[0].clone(), "eu").await;
    assert_eq!(status, 201, "{mv}");
    assert_eq!(mv["status"], "SCHEDULED");
    let id = mv["id"].as_str().unwrap().to_string();
    let (status, v) = schedule(dates[1].clone(), "eu").await;
    assert_eq!(
        (status, v["errors"][0]["code"].as_str()),
        (400, Some("MOVE_ALREADY_SCHEDULED")),
        "{v}"
    );
    let (status, v) = s
        .call(
            &operator,
            "PATCH",
            &format!("/kontor/v1/migrations/{id}"),
            Some(json!({"date": dates[2]})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert!(v["startAt"].as_str().unwrap().starts_with(&dates[2]));
    let (status, _) = s
        .call(
            &operator,
            "DELETE",
            &format!("/kontor/v1/migrations/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, v) = s
        .call(
            &operator,
            "GET",
            &format!("/kontor/v1/migrations/{id}"),
            None,
        )
        .await;
    assert_eq!(v["status"], "CANCELED");
    // Every step is in the audit log.
    let audit = common::console::console_page(&s, &session.0, "/app/settings/audit").await;
    for action in [
        "data_move.scheduled",
        "data_move.rescheduled",
        "data_move.canceled",
    ] {
        assert!(audit.contains(action), "{action} is not in the audit log");
    }

    // Payments: refused up front, with the reason.
    s.cli(&[
        "admin",
        "account",
        "set-flag",
        "--account",
        &account,
        "--flag",
        "payments",
    ]);
    let (_, v) = s
        .call(&operator, "GET", "/kontor/v1/migrations", None)
        .await;
    assert_eq!(v["canSchedule"], false);
    assert!(v["refusal"].as_str().unwrap().contains("payments"), "{v}");
    let (status, v) = schedule(dates[0].clone(), "eu").await;
    assert_eq!(
        (status, v["errors"][0]["code"].as_str()),
        (400, Some("PAYMENTS_IN_USE")),
        "{v}"
    );
    s.cli(&[
        "admin",
        "account",
        "set-flag",
        "--account",
        &account,
        "--flag",
        "payments",
        "--off",
    ]);

    // EU → US is not offered by default.
    let eu = s.cli(&[
        "admin",
        "account",
        "create",
        "--name",
        "in the eu",
        "--region",
        "eu",
    ]);
    let eu_token = s.cli(&["admin", "token", "create", "--account", &eu, "--name", "t"]);
    let (status, v) = s
        .call(
            &eu_token,
            "POST",
            "/kontor/v1/migrations",
            Some(json!({"to": "us", "date": dates[0]})),
        )
        .await;
    assert_eq!(
        (status, v["errors"][0]["code"].as_str()),
        (400, Some("MOVE_NOT_OFFERED")),
        "{v}"
    );

    // The CLI follows the same rules.
    let out = kontor(&s.data_dir)
        .args([
            "migration",
            "schedule",
            "--account",
            &account,
            "--to",
            "eu",
            "--at",
        ])
        .arg(kontor_domain::time::date_string(today).unwrap())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 7 days ahead"));
    let listed = s.cli(&["migration", "dates", "--to", "eu"]);
    assert_eq!(listed.lines().next(), Some(dates[0].as_str()));
    drop(s);

    // Close to the start: no cancelling (72 hours here), and imports are refused.
    let s = Server::start_with(
        None,
        &[
            ("KONTOR_MOVES_NOTICE_DAYS", "1"),
            ("KONTOR_MOVES_CANCEL_HOURS", "72"),
            ("KONTOR_MOVES_IMPORTS_CLOSED_HOURS", "72"),
        ],
    )
    .await;
    let (_, operator) = s.account("soon");
    let (_, v) = s
        .call(&operator, "GET", "/kontor/v1/migrations", None)
        .await;
    let first = v["availableDates"][0].as_str().unwrap().to_string();
    let (status, mv) = s
        .call(
            &operator,
            "POST",
            "/kontor/v1/migrations",
            Some(json!({"to": "eu", "date": first})),
        )
        .await;
    assert_eq!(status, 201, "{mv}");
    let (status, v) = s
        .call(
            &operator,
            "DELETE",
            &format!("/kontor/v1/migrations/{}", mv["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(
        (status, v["errors"][0]["code"].as_str()),
        (400, Some("TOO_LATE_TO_CHANGE")),
        "{v}"
    );
    let request = json!({"name": "during a move", "files": [{"fileName": "c.csv", "fileFormat": "CSV", "fileImportPage": {"hasHeader": true, "columnMappings": [{"columnName": "email", "propertyName": "email", "columnObjectTypeId": "0-1"}]}}]});
    let (status, v) = post_import(&s, &operator, &request, "email\na@b.test\n").await;
    assert_eq!(
        (status, v["errors"][0]["code"].as_str()),
        (400, Some("MOVE_IN_PROGRESS")),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap().contains("paused"));
}
