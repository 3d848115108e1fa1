//! The Salesforce uninstall's bookkeeping: it and a restore exclude each other, a reconnect is
//! refused while it runs, the kept data is swept after 48 hours, and the Salesforce-only
//! owners are reassigned, reverted and removed only when nothing references them.

use super::*;
use kontor_store::{NewSalesforceConnection, UninstallImpact, UninstallRequest};

fn connection(org: &str) -> NewSalesforceConnection {
    NewSalesforceConnection {
        org_id: org.into(),
        org_name: "Acme".into(),
        sf_user_id: "005000000000001AAA".into(),
        username: "admin@example.com".into(),
        user_email: "admin@example.com".into(),
        instance_url: "https://example.invalid".into(),
        access_sealed: "sealed-a".into(),
        refresh_sealed: "sealed-r".into(),
        connected_by: None,
    }
}

fn request(keep: bool) -> UninstallRequest {
    UninstallRequest {
        reason: "Other".into(),
        push_pending: false,
        keep_data: keep,
    }
}

pub async fn uninstall_excludes_restores_and_keeps_data_48_hours(d: Directory) {
    let (a, s) = account(&d, "uninstall").await;
    s.connect_salesforce(a, &connection("00D1"), &[])
        .await
        .unwrap();
    let impact = UninstallImpact::default();

    // A restore running: no uninstall.
    let restore = new_import(&s, a, kontor_store::imports::SOURCE_RESTORE, None)
        .await
        .unwrap();
    match s
        .begin_salesforce_uninstall(a, &request(true), &impact, None, "tests")
        .await
    {
        Err(StoreError::Conflict { message, .. }) => {
            assert!(message.contains("restore"), "{message}")
        }
        other => panic!("an uninstall started during a restore: {other:?}"),
    }
    s.cancel_import(a, restore.id).await.unwrap();

    // An uninstall open: no restore, no second uninstall, no reconnect; no round is due.
    let u = s
        .begin_salesforce_uninstall(a, &request(true), &impact, None, "tests")
        .await
        .unwrap();
    assert_eq!(u.state, "queued");
    assert!(matches!(
        new_import(&s, a, kontor_store::imports::SOURCE_RESTORE, None).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(s
        .begin_salesforce_uninstall(a, &request(true), &impact, None, "tests")
        .await
        .is_err());
    assert!(matches!(
        s.connect_salesforce(a, &connection("00D1"), &[]).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(!s.salesforce_due().await.unwrap().contains(&a));
    assert_eq!(
        s.open_salesforce_uninstall(a).await.unwrap().unwrap().id,
        u.id
    );

    // Its job ends it: the data kept, the tokens gone.
    let job = s
        .claim_job(
            "node",
            60_000,
            &[kontor_store::JOB_KIND_SALESFORCE_UNINSTALL],
            Some((a, u.job_id)),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(s
        .claim_salesforce_uninstalling(a, "node", 60_000)
        .await
        .unwrap());
    assert!(s
        .finish_salesforce_uninstall(&job, "node", &u, &json!({"summary": "done"}), &[])
        .await
        .unwrap());
    let c = s.salesforce_connection(a).await.unwrap().unwrap();
    assert_eq!(c.state, kontor_store::SF_UNINSTALLED);
    assert!(c.access_sealed.is_empty() && c.refresh_sealed.is_empty());
    let until = c.keep_until.unwrap();
    assert_eq!(
        until - c.disconnected_at.unwrap(),
        kontor_store::SALESFORCE_KEEP_MS
    );
    assert!(s.open_salesforce_uninstall(a).await.unwrap().is_none());
    new_import(&s, a, kontor_store::imports::SOURCE_RESTORE, None)
        .await
        .unwrap();

    // Kept until the 48 hours end; then swept.
    assert!(s
        .expire_salesforce_data(until - 1)
        .await
        .unwrap()
        .is_empty());
    assert!(s.salesforce_connection(a).await.unwrap().is_some());
    assert_eq!(s.expire_salesforce_data(until).await.unwrap(), vec![a]);
    assert!(s.salesforce_connection(a).await.unwrap().is_none());
}

pub async fn salesforce_owners_are_reassigned_reverted_and_removed(d: Directory) {
    let (a, s) = account(&d, "owners").await;
    let contacts = ot(&s, a, "contacts").await;
    let rita = s
        .salesforce_owner(a, "005RITA", "rita@sf.test", "Rita", "Rep")
        .await
        .unwrap();
    let unused = s
        .salesforce_owner(a, "005NOBODY", "nobody@sf.test", "No", "Body")
        .await
        .unwrap();
    let u = s
        .create_user(
            a,
            "me@acme.test",
            "Me",
            "Here",
            Role::Admin,
            "a long enough password 1",
        )
        .await
        .unwrap();
    let me = s.owner(a, u.id, true, false).await.unwrap().unwrap().id;
    let made = s
        .create_records(
            a,
            &contacts,
            (0..3)
                .map(|i| CreateInput {
                    properties: props(json!({"email": format!("c{i}@x.test"), "hubspot_owner_id": rita.to_string()})),
                    associations: vec![],
                })
                .collect(),
            &actor(),
        )
        .await
        .unwrap();
    let owners = s.salesforce_only_owners(a).await.unwrap();
    assert_eq!(owners.len(), 2);
    let r = owners.iter().find(|o| o.owner.id == rita).unwrap();
    assert_eq!(r.live(), 3);

    // Only Salesforce-only owners, to owners who are users.
    assert!(s
        .request_owner_reassignment(a, &[(me, rita)], ChangeSource::Api, None, "t")
        .await
        .is_err());
    assert!(s
        .request_owner_reassignment(a, &[(rita, unused)], ChangeSource::Api, None, "t")
        .await
        .is_err());
    let run = s
        .request_owner_reassignment(a, &[(rita, me)], ChangeSource::Api, None, "t")
        .await
        .unwrap();
    let reassign = |id: i64| {
        let s = s.clone();
        async move {
            let r = s.reassignment(a, id).await.unwrap().unwrap();
            let job = s
                .claim_job(
                    "node",
                    60_000,
                    &[kontor_store::JOB_KIND_OWNER_REASSIGN],
                    Some((a, r.job_id)),
                )
                .await
                .unwrap()
                .unwrap();
            // Two records per batch: the cursor carries the job across batches.
            while let Some(true) = s
                .reassign_batch(&job, "node", &r, &actor(), 2)
                .await
                .unwrap()
            {}
            assert!(s.finish_reassignment(&job, "node", &r, None).await.unwrap());
            s.reassignment(a, id).await.unwrap().unwrap()
        }
    };
    let done = reassign(run.id).await;
    assert_eq!((done.moved, done.skipped), (3, 0));
    let owner_of = |id: i64| {
        let (s, contacts) = (s.clone(), contacts.clone());
        async move {
            s.records_by_ids(a, &contacts, &[id], false).await.unwrap()[0]
                .props
                .get("hubspot_owner_id")
                .cloned()
        }
    };
    assert_eq!(owner_of(made[0].id).await, Some(me.to_string()));

    // The cleanup removes both now (nothing references them); a revert brings Rita back.
    let (removed, kept) = s.remove_salesforce_owners(a, None, "t").await.unwrap();
    assert_eq!(removed.len(), 2);
    assert!(kept.is_empty());
    let back = s
        .request_reassignment_revert(a, run.id, ChangeSource::Api, None, "t")
        .await
        .unwrap();
    let back = reassign(back.id).await;
    assert_eq!(back.moved, 3);
    assert_eq!(owner_of(made[2].id).await, Some(rita.to_string()));
    assert_eq!(
        s.reassignment(a, run.id)
            .await
            .unwrap()
            .unwrap()
            .reverted_by,
        Some(back.id)
    );
    // Referenced again: kept, with its records named.
    let (removed, kept) = s.remove_salesforce_owners(a, None, "t").await.unwrap();
    assert!(removed.is_empty());
    assert_eq!(kept[0].owner.id, rita);
    assert_eq!(kept[0].live(), 3);
}
