//! Forms: an account's forms (fields mapped to contact properties), their submissions, and the
//! queue that keeps submissions while the account cannot take writes.
//!
//! A submission is first written to the directory's `form_queue` (durable, in the order it
//! came), and then applied in the account's cell: in one transaction the submission is recorded
//! in `form_submissions` under its id and the contact with its e-mail is created or updated. The
//! id is the primary key there, so a submission applied again (a crash between the cell's commit
//! and the queue's mark) changes nothing. The queue of an account is applied oldest first, and
//! only while the account is active: during a move's freeze submissions wait in the directory,
//! which does not move, and are applied in the new cell after the switch.

use crate::objects::ObjectType;
use crate::records::{Actor, WriteOp};
use crate::{allocate, Directory, Store, StoreError, StoreResult};
use kontor_domain::time::now_ms;
use kontor_domain::{value, ChangeSource, PropertyDef};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Connection;
use std::collections::BTreeMap;

/// A field of a form: the contact property it fills.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormField {
    pub name: String,
    pub label: String,
    pub required: bool,
}

#[derive(Debug, Clone)]
pub struct Form {
    pub id: String,
    pub name: String,
    pub fields: Vec<FormField>,
    /// What the submitter is shown after submitting.
    pub message: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub archived: bool,
}

/// A form's definition as given; `None` keeps what an update does not name.
#[derive(Debug, Clone, Default)]
pub struct FormInput {
    pub name: Option<String>,
    pub fields: Option<Vec<FormField>>,
    pub message: Option<String>,
}

/// What the submitter is shown when a form names no message.
pub const DEFAULT_MESSAGE: &str = "Thanks for submitting the form.";

/// One submission, as received (and queued) and as applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    pub id: String,
    pub form_id: String,
    pub submitted_at: i64,
    pub received_at: i64,
    /// Property name → value, in the order submitted.
    pub values: Vec<(String, String)>,
    pub page_uri: Option<String>,
    pub page_name: Option<String>,
}

/// A submission as the account's cell recorded it.
#[derive(Debug, Clone)]
pub struct AppliedSubmission {
    pub submission: Submission,
    pub applied_at: i64,
    pub contact_id: Option<i64>,
    /// Why no contact was written (a value no longer valid when it was applied).
    pub error: Option<String>,
}

/// A random (version 4) GUID.
pub fn new_guid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn invalid(code: &str, message: String, field: &str) -> StoreError {
    StoreError::validation(code, message, Some(field.to_string()))
}

/// Checks a form's definition against the account's contact properties.
fn check_form(name: &str, fields: &[FormField], defs: &[PropertyDef]) -> StoreResult<()> {
    if name.trim().is_empty() || name.chars().count() > 200 {
        return Err(invalid(
            "INVALID_NAME",
            "a form needs a name of 1 to 200 characters".into(),
            "name",
        ));
    }
    if fields.is_empty() || fields.len() > 100 {
        return Err(invalid(
            "INVALID_FIELDS",
            "a form needs 1 to 100 fields".into(),
            "fieldGroups",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for f in fields {
        let def = defs.iter().find(|d| d.name == f.name).ok_or_else(|| {
            invalid(
                "INVALID_FIELD",
                format!("{:?} is not a contact property", f.name),
                "fieldGroups",
            )
        })?;
        if def.read_only_value || def.calculated {
            return Err(invalid(
                "INVALID_FIELD",
                format!("{:?} is read-only: a form cannot fill it", f.name),
                "fieldGroups",
            ));
        }
        if !seen.insert(f.name.as_str()) {
            return Err(invalid(
                "INVALID_FIELD",
                format!("{:?} appears twice in the form", f.name),
                "fieldGroups",
            ));
        }
    }
    if !fields.iter().any(|f| f.name == "email") {
        return Err(invalid(
            "INVALID_FIELDS",
            "a form needs an email field: submissions create or update the contact with that e-mail"
                .into(),
            "fieldGroups",
        ));
    }
    Ok(())
}

type FormRow = (String, String, String, String, i64, i64, Option<i64>);
const FORM_COLS: &str = "id, name, fields, message, created_at, updated_at, archived_at";

fn form_from(row: FormRow) -> StoreResult<Form> {
    Ok(Form {
        id: row.0,
        name: row.1,
        fields: serde_json::from_str(&row.2)?,
        message: row.3,
        created_at: row.4,
        updated_at: row.5,
        archived: row.6.is_some(),
    })
}

impl Store {
    async fn contact_defs(&self, account: i64) -> StoreResult<(ObjectType, Vec<PropertyDef>)> {
        let ot = self
            .object_type(account, "contacts")
            .await?
            .ok_or_else(|| StoreError::Config("contacts are not defined".into()))?;
        let defs = self.properties(account, &ot.type_id, false).await?;
        Ok((ot, defs))
    }

    pub async fn create_form(&self, account: i64, input: FormInput) -> StoreResult<Form> {
        let (_, defs) = self.contact_defs(account).await?;
        let name = input.name.unwrap_or_default();
        let fields = input.fields.unwrap_or_default();
        check_form(&name, &fields, &defs)?;
        let now = now_ms();
        let form = Form {
            id: new_guid(),
            name: name.trim().to_string(),
            fields,
            message: input
                .message
                .filter(|m| !m.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_MESSAGE.to_string()),
            created_at: now,
            updated_at: now,
            archived: false,
        };
        let mut tx = self.write().await?;
        sqlx::query("INSERT INTO forms (account_id, id, name, fields, message, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)")
            .bind(account)
            .bind(&form.id)
            .bind(&form.name)
            .bind(serde_json::to_string(&form.fields)?)
            .bind(&form.message)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(form)
    }

    /// The account's forms (the archived ones instead with `archived`), newest first.
    pub async fn forms(&self, account: i64, archived: bool) -> StoreResult<Vec<Form>> {
        let cond = if archived { "IS NOT NULL" } else { "IS NULL" };
        let rows: Vec<FormRow> = sqlx::query_as(&format!(
            "SELECT {FORM_COLS} FROM forms WHERE account_id = $1 AND archived_at {cond} ORDER BY created_at DESC, id"
        ))
        .bind(account)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(form_from).collect()
    }

    /// One form, archived or not.
    pub async fn form(&self, account: i64, id: &str) -> StoreResult<Option<Form>> {
        let row: Option<FormRow> = sqlx::query_as(&format!(
            "SELECT {FORM_COLS} FROM forms WHERE account_id = $1 AND id = $2"
        ))
        .bind(account)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(form_from).transpose()
    }

    /// Changes what `input` names of a form that is not archived.
    pub async fn update_form(&self, account: i64, id: &str, input: FormInput) -> StoreResult<Form> {
        let mut form = self
            .form(account, id)
            .await?
            .filter(|f| !f.archived)
            .ok_or_else(|| StoreError::NotFound(format!("form {id} does not exist")))?;
        if let Some(n) = input.name {
            form.name = n.trim().to_string();
        }
        if let Some(f) = input.fields {
            form.fields = f;
        }
        if let Some(m) = input.message {
            form.message = if m.trim().is_empty() {
                DEFAULT_MESSAGE.to_string()
            } else {
                m
            };
        }
        let (_, defs) = self.contact_defs(account).await?;
        check_form(&form.name, &form.fields, &defs)?;
        form.updated_at = now_ms();
        let mut tx = self.write().await?;
        sqlx::query("UPDATE forms SET name = $1, fields = $2, message = $3, updated_at = $4 WHERE account_id = $5 AND id = $6")
            .bind(&form.name)
            .bind(serde_json::to_string(&form.fields)?)
            .bind(&form.message)
            .bind(form.updated_at)
            .bind(account)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(form)
    }

    /// Archives a form: it takes no more submissions. `false` if there was no such form.
    pub async fn archive_form(&self, account: i64, id: &str) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let n = sqlx::query("UPDATE forms SET archived_at = $1, updated_at = $1 WHERE account_id = $2 AND id = $3 AND archived_at IS NULL")
            .bind(now_ms())
            .bind(account)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Checks a submission's values against the form and the contact properties, as they are
    /// when it is received: each field in the form, the required ones present, each value valid
    /// for its property. The error names the field (`fields.{name}`) and HubSpot's error type.
    pub async fn check_submission(
        &self,
        account: i64,
        form: &Form,
        values: &[(String, String)],
    ) -> StoreResult<()> {
        let (_, defs) = self.contact_defs(account).await?;
        for (name, v) in values {
            if !form.fields.iter().any(|f| &f.name == name) {
                return Err(invalid(
                    "FIELD_NOT_IN_FORM_DEFINITION",
                    format!("Error in 'fields.{name}'. This field was not a part of the form definition."),
                    &format!("fields.{name}"),
                ));
            }
            let Some(def) = defs.iter().find(|d| &d.name == name) else {
                return Err(invalid(
                    "FIELD_NOT_IN_FORM_DEFINITION",
                    format!("Error in 'fields.{name}'. The property no longer exists."),
                    &format!("fields.{name}"),
                ));
            };
            if name == "email" && !plausible_email(v) {
                return Err(invalid(
                    "INVALID_EMAIL",
                    "Error in 'fields.email'. Invalid email address".to_string(),
                    "fields.email",
                ));
            }
            if let Err(e) = value::normalize_str(def, v) {
                return Err(invalid(
                    "INVALID_FIELD_VALUE",
                    format!("Error in 'fields.{name}'. {}", e.message),
                    &format!("fields.{name}"),
                ));
            }
        }
        for f in form.fields.iter().filter(|f| f.required) {
            if !values
                .iter()
                .any(|(n, v)| *n == f.name && !v.trim().is_empty())
            {
                return Err(invalid(
                    "REQUIRED_FIELD",
                    format!(
                        "Error in 'fields.{}'. Required field '{}' is missing",
                        f.name, f.name
                    ),
                    &format!("fields.{}", f.name),
                ));
            }
        }
        if !values
            .iter()
            .any(|(n, v)| n == "email" && !v.trim().is_empty())
        {
            return Err(invalid(
                "REQUIRED_FIELD",
                "Error in 'fields.email'. Required field 'email' is missing".into(),
                "fields.email",
            ));
        }
        Ok(())
    }

    /// Applies a submission in this cell: records it under its id and creates or updates the
    /// contact with its e-mail, in one transaction. A submission already recorded is left as it
    /// is (`false`). A value that is no longer valid is recorded with the reason, and no
    /// contact is written.
    pub async fn apply_submission(&self, account: i64, sub: &Submission) -> StoreResult<bool> {
        let (ot, defs) = self.contact_defs(account).await?;
        let by_name: std::collections::HashMap<&str, &PropertyDef> =
            defs.iter().map(|d| (d.name.as_str(), d)).collect();
        // A field left empty changes nothing (it does not clear what the contact has).
        let raw: serde_json::Map<String, Value> = sub
            .values
            .iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(n, v)| (n.clone(), Value::String(v.clone())))
            .collect();
        let email = sub
            .values
            .iter()
            .find(|(n, _)| n == "email")
            .map(|(_, v)| v.trim().to_lowercase())
            .unwrap_or_default();
        let actor = Actor {
            source: ChangeSource::Form,
            source_id: Some(sub.form_id.clone()),
            user_id: None,
        };
        let now = now_ms();
        let mut tx = self.write().await?;
        let n = sqlx::query("INSERT INTO form_submissions (account_id, id, form_id, submitted_at, received_at, applied_at, fields, page_uri, page_name) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (account_id, id) DO NOTHING")
            .bind(account)
            .bind(&sub.id)
            .bind(&sub.form_id)
            .bind(sub.submitted_at)
            .bind(sub.received_at)
            .bind(now)
            .bind(serde_json::to_string(&sub.values)?)
            .bind(&sub.page_uri)
            .bind(&sub.page_name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        let written = match crate::records::normalize_properties(&by_name, &raw, "") {
            Err(e) => Err(e),
            Ok(props) => {
                let found: Option<(i64,)> = sqlx::query_as(
                    "SELECT u.record_id FROM unique_values u JOIN records r ON r.account_id = u.account_id AND r.id = u.record_id \
                     WHERE u.account_id = $1 AND u.object_type = $2 AND u.property = 'email' AND u.value = $3 AND r.archived = 0",
                )
                .bind(account)
                .bind(&ot.type_id)
                .bind(&email)
                .fetch_optional(&mut *tx)
                .await?;
                let op = match found {
                    Some((id,)) => WriteOp::Update { id, props },
                    None => WriteOp::Create {
                        id: None,
                        props,
                        associations: Vec::new(),
                    },
                };
                let mut sp = (*tx).begin().await?;
                match self
                    .apply_in(&mut sp, account, &ot, &defs, vec![op], &actor, None)
                    .await
                {
                    Ok(w) => {
                        sp.commit().await?;
                        Ok(w.first().map(|(r, _)| r.id))
                    }
                    Err(e) => {
                        sp.rollback().await?;
                        Err(e)
                    }
                }
            }
        };
        let (contact, error) = match written {
            Ok(id) => (id, None),
            Err(e @ (StoreError::Validation { .. } | StoreError::Conflict { .. })) => {
                (None, Some(e.to_string()))
            }
            Err(e) => return Err(e),
        };
        sqlx::query("UPDATE form_submissions SET contact_id = $1, error = $2 WHERE account_id = $3 AND id = $4")
            .bind(contact)
            .bind(&error)
            .bind(account)
            .bind(&sub.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A form's submissions as recorded here, newest first, `limit` from `offset`.
    pub async fn form_submissions(
        &self,
        account: i64,
        form_id: &str,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<AppliedSubmission>> {
        type Row = (
            String,
            i64,
            i64,
            i64,
            String,
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, submitted_at, received_at, applied_at, fields, page_uri, page_name, contact_id, error FROM form_submissions \
             WHERE account_id = $1 AND form_id = $2 ORDER BY submitted_at DESC, received_at DESC, id LIMIT $3 OFFSET $4",
        )
        .bind(account)
        .bind(form_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(AppliedSubmission {
                    submission: Submission {
                        id: r.0,
                        form_id: form_id.to_string(),
                        submitted_at: r.1,
                        received_at: r.2,
                        values: serde_json::from_str(&r.4)?,
                        page_uri: r.5,
                        page_name: r.6,
                    },
                    applied_at: r.3,
                    contact_id: r.7,
                    error: r.8,
                })
            })
            .collect()
    }

    /// How many submissions each of the account's forms has recorded.
    pub async fn form_submission_counts(&self, account: i64) -> StoreResult<BTreeMap<String, i64>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT form_id, COUNT(*) FROM form_submissions WHERE account_id = $1 GROUP BY form_id",
        )
        .bind(account)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }
}

/// Something with one `@`, text on both sides and a dot in the domain: what HubSpot's forms
/// accept as an e-mail address.
pub fn plausible_email(v: &str) -> bool {
    let v = v.trim();
    let Some((local, domain)) = v.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !v.chars().any(char::is_whitespace)
        && v.len() <= 254
}

impl Directory {
    /// Queues a submission for its account, after those queued before it.
    pub async fn queue_submission(&self, account: i64, sub: &Submission) -> StoreResult<()> {
        let mut tx = self.directory.write().await?;
        // The directory's own counter (account 0): the queue's order.
        let seq = allocate(&mut tx, 0, "form_queue", 1).await?;
        sqlx::query("INSERT INTO form_queue (seq, id, account_id, body, received_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(seq)
            .bind(&sub.id)
            .bind(account)
            .bind(serde_json::to_string(sub)?)
            .bind(sub.received_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Submissions of the account still to apply, oldest first.
    pub async fn queued_submissions(
        &self,
        account: i64,
        limit: i64,
    ) -> StoreResult<Vec<Submission>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT body FROM form_queue WHERE account_id = $1 AND applied_at IS NULL ORDER BY seq LIMIT $2",
        )
        .bind(account)
        .bind(limit)
        .fetch_all(&self.directory.pool)
        .await?;
        rows.into_iter()
            .map(|(b,)| Ok(serde_json::from_str(&b)?))
            .collect()
    }

    /// Whether the submission `id` waits in the queue.
    pub async fn submission_waits(&self, id: &str) -> StoreResult<bool> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT seq FROM form_queue WHERE id = $1 AND applied_at IS NULL")
                .bind(id)
                .fetch_optional(&self.directory.pool)
                .await?;
        Ok(row.is_some())
    }

    /// The accounts with submissions waiting.
    pub async fn accounts_with_queued_submissions(&self) -> StoreResult<Vec<i64>> {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT DISTINCT account_id FROM form_queue WHERE applied_at IS NULL ORDER BY 1",
        )
        .fetch_all(&self.directory.pool)
        .await?;
        Ok(rows.into_iter().map(|(a,)| a).collect())
    }

    /// Drops queue entries applied before `before` (the cells keep the submissions).
    pub async fn purge_applied_submissions(&self, before: i64) -> StoreResult<u64> {
        let mut tx = self.directory.write().await?;
        let n = sqlx::query("DELETE FROM form_queue WHERE applied_at < $1")
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// Applies the account's queued submissions in their order while it is active, each in
    /// its cell and then marked done here. Stops, leaving the rest queued, when the account is
    /// not active (a move's freeze) or its cell's fence refuses the write. Returns how many
    /// were applied.
    pub async fn apply_queued_submissions(&self, account_id: i64) -> StoreResult<usize> {
        let mut done = 0;
        loop {
            let batch = self.queued_submissions(account_id, 100).await?;
            if batch.is_empty() {
                return Ok(done);
            }
            for sub in batch {
                // The directory is read again for each: the account may close at any moment.
                let Some(account) = self.account(account_id).await? else {
                    return Ok(done);
                };
                if account.state != crate::LifecycleState::Active {
                    return Ok(done);
                }
                match self
                    .cell(&account)?
                    .apply_submission(account.id, &sub)
                    .await
                {
                    Ok(_) => {}
                    Err(StoreError::Fenced(_)) => return Ok(done),
                    Err(e) => return Err(e),
                }
                let mut tx = self.directory.write().await?;
                sqlx::query(
                    "UPDATE form_queue SET applied_at = $1 WHERE id = $2 AND applied_at IS NULL",
                )
                .bind(now_ms())
                .bind(&sub.id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                done += 1;
            }
        }
    }
}
