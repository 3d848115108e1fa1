//! Webhooks: events come from the change log, exactly once per committed change and never for
//! a rolled-back one, also when two senders fan out at once; a claim gives each event to one
//! sender at a time, and an attempt is recorded only by the sender holding the claim.

use crate::{account, actor, ot, props};
use kontor_store::{CreateInput, Directory, Store, SubscriptionInput, WebhookAttempt};
use serde_json::json;

fn subscription(event_type: &str, property: Option<&str>) -> SubscriptionInput {
    SubscriptionInput {
        event_type: event_type.into(),
        object_type_id: None,
        property_name: property.map(Into::into),
        active: true,
    }
}

async fn create(s: &Store, a: i64, email: &str) -> Result<i64, kontor_store::StoreError> {
    let contacts = ot(s, a, "contacts").await;
    let r = s
        .create_records(
            a,
            &contacts,
            vec![CreateInput {
                properties: props(json!({ "email": email })),
                associations: vec![],
            }],
            &actor(),
        )
        .await?;
    Ok(r[0].id)
}

/// Fans out until the app's cursor has caught up; returns the events made.
async fn fan_out(s: &Store, a: i64, app: i64) -> usize {
    let mut made = 0;
    while s.webhook_apps_behind().await.unwrap().contains(&(a, app)) {
        made += s.fan_out_webhooks(a, app).await.unwrap().unwrap_or(0);
    }
    made
}

pub async fn webhook_events_follow_the_change_log(d: Directory) {
    let (a, s) = account(&d, "webhooks").await;
    let before = create(&s, a, "before@example.com").await.unwrap();
    let app = s
        .create_webhook_app(a, "sync", Some("https://hooks.example.com/in"), "sealed")
        .await
        .unwrap();
    for (t, p) in [
        ("contact.creation", None),
        ("contact.propertyChange", Some("email")),
        ("contact.associationChange", None),
    ] {
        s.create_webhook_subscription(a, app.id, &subscription(t, p))
            .await
            .unwrap();
    }
    let first = create(&s, a, "first@example.com").await.unwrap();
    // A rolled-back write (a duplicate e-mail) makes no event.
    assert!(create(&s, a, "first@example.com").await.is_err());
    let second = create(&s, a, "second@example.com").await.unwrap();

    // Two senders fanning out at once make each event once.
    let (x, y) = tokio::join!(fan_out(&s, a, app.id), fan_out(&s, a, app.id));
    assert_eq!(
        x + y,
        4,
        "a creation and an e-mail for each of two contacts"
    );
    let events = s.webhook_events(a, app.id, None, 100).await.unwrap();
    let mut told: Vec<(i64, String)> = events
        .iter()
        .map(|e| (e.object_id, e.event_type.clone()))
        .collect();
    told.sort();
    assert_eq!(
        told,
        vec![
            (first, "contact.creation".into()),
            (first, "contact.propertyChange".into()),
            (second, "contact.creation".into()),
            (second, "contact.propertyChange".into()),
        ]
    );
    assert!(events.iter().all(|e| e.object_id != before));
    let e = events
        .iter()
        .find(|e| e.object_id == first && e.event_type == "contact.propertyChange")
        .unwrap();
    assert_eq!(e.payload["propertyValue"], "first@example.com");
    assert_eq!(e.payload["portalId"], a);
    assert_eq!(e.payload["eventId"], e.id);

    // Associations are told from the contact's side; the company's side has no subscription.
    let contacts = ot(&s, a, "contacts").await;
    let companies = ot(&s, a, "companies").await;
    let company = s
        .create_records(
            a,
            &companies,
            vec![CreateInput {
                properties: props(json!({ "name": "Acme" })),
                associations: vec![],
            }],
            &actor(),
        )
        .await
        .unwrap()[0]
        .id;
    s.associate(a, &contacts, first, &companies, company, &[], &actor())
        .await
        .unwrap();
    // Associating again changes nothing, and tells nothing.
    s.associate(a, &contacts, first, &companies, company, &[], &actor())
        .await
        .unwrap();
    s.dissociate(a, &companies, company, &contacts, first, None, &actor())
        .await
        .unwrap();
    assert_eq!(fan_out(&s, a, app.id).await, 2);
    let assoc: Vec<_> = s
        .webhook_events(a, app.id, None, 2)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .collect();
    assert_eq!(assoc[0].payload["associationRemoved"], false);
    assert_eq!(assoc[0].payload["fromObjectId"], first);
    assert_eq!(assoc[0].payload["toObjectId"], company);
    assert_eq!(assoc[1].payload["associationRemoved"], true);
    assert_eq!(assoc[1].payload["associationType"], "CONTACT_TO_COMPANY");

    // Claims: one sender at a time; a lapsed claim is taken over, and only the holder of the
    // claim records an attempt.
    let now = kontor_domain::time::now_ms();
    let one = s
        .claim_webhook_events(a, app.id, "one", now, 60_000, 100)
        .await
        .unwrap();
    assert_eq!(one.len(), 6);
    let two = s
        .claim_webhook_events(a, app.id, "two", now, 60_000, 100)
        .await
        .unwrap();
    assert!(two.is_empty(), "claimed twice");
    let later = s
        .claim_webhook_events(a, app.id, "two", now + 61_000, 60_000, 100)
        .await
        .unwrap();
    assert_eq!(later.len(), 6, "a lapsed claim is taken over");
    let ok = WebhookAttempt {
        delivered: true,
        status: Some(200),
        error: None,
        at: now,
    };
    s.record_webhook_attempt(a, "one", &one, &ok, |_| None)
        .await
        .unwrap();
    assert_eq!(
        s.webhook_delivery_counts(a, app.id)
            .await
            .unwrap()
            .delivered,
        0
    );
    s.record_webhook_attempt(a, "two", &later, &ok, |_| None)
        .await
        .unwrap();
    let counts = s.webhook_delivery_counts(a, app.id).await.unwrap();
    assert_eq!((counts.pending, counts.delivered), (0, 6));

    // A deletion to the recycle bin and a restore from it, each told once.
    for t in ["contact.deletion", "contact.restore"] {
        s.create_webhook_subscription(a, app.id, &subscription(t, None))
            .await
            .unwrap();
    }
    s.archive_records(a, &contacts, &[second], &actor())
        .await
        .unwrap();
    s.restore_records(a, &contacts, &[second], &actor())
        .await
        .unwrap();
    assert_eq!(fan_out(&s, a, app.id).await, 2);
    let back: Vec<_> = s
        .webhook_events(a, app.id, None, 2)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .map(|e| (e.event_type, e.object_id, e.payload["changeFlag"].clone()))
        .collect();
    assert_eq!(
        back,
        vec![
            ("contact.deletion".to_string(), second, json!("DELETED")),
            ("contact.restore".to_string(), second, json!("RESTORED")),
        ]
    );

    // Housekeeping: delivered events go once past their time, and so do events never sent.
    let later = kontor_domain::time::now_ms() + 1;
    assert!(s.purge_webhook_events(later).await.unwrap() >= 8);
    assert!(s
        .webhook_events(a, app.id, None, 100)
        .await
        .unwrap()
        .is_empty());

    // Another account sees none of it.
    let (b, sb) = account(&d, "webhooks-other").await;
    assert!(sb.webhook_app(b, app.id).await.unwrap().is_none());
    assert!(sb
        .webhook_events(b, app.id, None, 100)
        .await
        .unwrap()
        .is_empty());
}
