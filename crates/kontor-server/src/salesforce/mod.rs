//! The Salesforce integration: the connected app's settings (`Policy`), the objects and
//! default field mappings, the "Salesforce information" properties, value conversion both
//! ways, the sync engine (`sync`), the HTTP client (`client`) and the operators' API (`api`).
//! Its state lives in the account's cell (`kontor_store::salesforce`).

pub mod api;
pub mod client;
pub mod sync;
pub mod uninstall;

use kontor_store::{SalesforceMapping, Store, StoreError, StoreResult, RULE_TWO_WAY};
use serde_json::Value;
use std::time::Duration;

/// The operator's connected app in Salesforce (`[salesforce]`), and the sync's pace.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Empty: the integration is not offered.
    pub client_id: String,
    pub client_secret: String,
    /// `https://login.salesforce.com`, `https://test.salesforce.com` for sandboxes, or a
    /// My Domain login URL.
    pub login_url: String,
    pub api_version: String,
    /// The pause between two sync rounds of a connection.
    pub interval: Duration,
    /// How long a node's claim on a round lasts without renewal (it renews after every
    /// page): after a crash, another node takes the round up once it lapses.
    pub claim: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            client_id: String::new(),
            client_secret: String::new(),
            login_url: "https://login.salesforce.com".into(),
            api_version: "62.0".into(),
            interval: Duration::from_secs(300),
            claim: Duration::from_secs(60),
        }
    }
}

impl Policy {
    pub fn enabled(&self) -> bool {
        !self.client_id.is_empty() && !self.client_secret.is_empty()
    }

    /// The login URL must be HTTPS (plain HTTP only on the loopback interface), the API
    /// version one with upserts in collections (46.0), the interval positive.
    pub fn check(&self) -> Result<(), String> {
        crate::oidc::check_url(&self.login_url).map_err(|m| format!("login_url: {m}"))?;
        if !self.api_version.parse::<f64>().is_ok_and(|v| v >= 46.0) {
            return Err(format!(
                "api_version {:?} must be a version such as 62.0, at least 46.0",
                self.api_version
            ));
        }
        if self.interval.is_zero() || self.claim.is_zero() {
            return Err("interval_seconds and claim_seconds must be positive".into());
        }
        Ok(())
    }
}

/// The Salesforce objects synced, each with its kontor type, in the order a round pulls
/// them: accounts before the contacts and deals that refer to them, leads before contacts
/// (a converted lead's link moves to its contact before the contact is read).
pub const OBJECTS: &[(&str, &str)] = &[
    ("Account", "0-2"),
    ("Lead", "0-1"),
    ("Contact", "0-1"),
    ("Opportunity", "0-3"),
    ("Task", "0-27"),
];

/// Picklist values that differ on the two sides: (Salesforce field, Salesforce value, kontor
/// value). The first of a kontor value's rows is what goes to Salesforce.
const VALUES: &[(&str, &str, &str)] = &[
    ("Status", "Not Started", "NOT_STARTED"),
    ("Status", "In Progress", "IN_PROGRESS"),
    ("Status", "Completed", "COMPLETED"),
    ("Status", "Waiting on someone else", "WAITING"),
    ("Status", "Deferred", "DEFERRED"),
    ("Priority", "High", "HIGH"),
    ("Priority", "Normal", "MEDIUM"),
    ("Priority", "Low", "LOW"),
];

/// A task's picklist value as kontor's, and back.
pub fn task_value(field: &str, salesforce: Option<&str>, kontor: Option<&str>) -> Option<String> {
    VALUES
        .iter()
        .find(|(f, sf, k)| *f == field && (salesforce == Some(*sf) || kontor == Some(*k)))
        .map(|(_, sf, k)| if salesforce.is_some() { k } else { sf }.to_string())
}

/// The property that holds a record's Salesforce id, per Salesforce object (HubSpot's names).
/// Tasks have none: their links are kept by the integration alone.
pub fn id_property(sf_type: &str) -> Option<&'static str> {
    match sf_type {
        "Lead" => Some("salesforceleadid"),
        "Contact" => Some("salesforcecontactid"),
        "Account" => Some("salesforceaccountid"),
        "Opportunity" => Some("hs_salesforceopportunityid"),
        _ => None,
    }
}

/// The default mappings: standard fields, two-way.
pub fn default_mappings() -> Vec<SalesforceMapping> {
    let person = |t: &str, prefix: &str| {
        let mut v = vec![
            ("FirstName", "firstname"),
            ("LastName", "lastname"),
            ("Email", "email"),
            ("Phone", "phone"),
            ("MobilePhone", "mobilephone"),
            ("Title", "jobtitle"),
            ("OwnerId", "hubspot_owner_id"),
        ];
        let street = format!("{prefix}Street");
        let city = format!("{prefix}City");
        let state = format!("{prefix}State");
        let zip = format!("{prefix}PostalCode");
        let country = format!("{prefix}Country");
        let mut out: Vec<SalesforceMapping> = v.drain(..).map(|(f, p)| mapping(t, f, p)).collect();
        for (f, p) in [
            (street, "address"),
            (city, "city"),
            (state, "state"),
            (zip, "zip"),
            (country, "country"),
        ] {
            out.push(mapping(t, &f, p));
        }
        out
    };
    let mut all = person("Lead", "");
    all.push(mapping("Lead", "Company", "company"));
    all.push(mapping("Lead", "Website", "website"));
    all.extend(person("Contact", "Mailing"));
    for (f, p) in [
        ("Name", "name"),
        ("Website", "website"),
        ("Phone", "phone"),
        ("Industry", "industry"),
        ("BillingCity", "city"),
        ("BillingState", "state"),
        ("BillingCountry", "country"),
        ("NumberOfEmployees", "numberofemployees"),
        ("AnnualRevenue", "annualrevenue"),
        ("OwnerId", "hubspot_owner_id"),
    ] {
        all.push(mapping("Account", f, p));
    }
    for (f, p) in [
        ("Name", "dealname"),
        ("Amount", "amount"),
        ("CloseDate", "closedate"),
        ("StageName", "dealstage"),
        ("OwnerId", "hubspot_owner_id"),
    ] {
        all.push(mapping("Opportunity", f, p));
    }
    for (f, p) in [
        ("Subject", "hs_task_subject"),
        ("Description", "hs_task_body"),
        ("Status", "hs_task_status"),
        ("Priority", "hs_task_priority"),
        ("ActivityDate", "hs_timestamp"),
        ("OwnerId", "hubspot_owner_id"),
    ] {
        all.push(mapping("Task", f, p));
    }
    all
}

fn mapping(t: &str, f: &str, p: &str) -> SalesforceMapping {
    SalesforceMapping {
        sf_type: t.into(),
        sf_field: f.into(),
        property: p.into(),
        rule: RULE_TWO_WAY.into(),
        custom: false,
    }
}

/// The "Salesforce information" group and its properties, on contacts, companies and deals,
/// with HubSpot's internal names; made when missing.
pub async fn ensure_properties(store: &Store, account: i64) -> StoreResult<()> {
    let sets: &[(&str, &[(&str, &str, &str)])] = &[
        (
            "0-1",
            &[
                ("salesforcecontactid", "Salesforce Contact ID", "string"),
                ("salesforceleadid", "Salesforce Lead ID", "string"),
                ("salesforceownerid", "Salesforce Owner ID", "string"),
                (
                    "salesforcelastsynctime",
                    "Last Salesforce Sync Time",
                    "datetime",
                ),
            ],
        ),
        (
            "0-2",
            &[
                ("salesforceaccountid", "Salesforce Account ID", "string"),
                ("salesforceownerid", "Salesforce Owner ID", "string"),
                (
                    "salesforcelastsynctime",
                    "Last Salesforce Sync Time",
                    "datetime",
                ),
            ],
        ),
        (
            "0-3",
            &[
                (
                    "hs_salesforceopportunityid",
                    "Salesforce Opportunity ID",
                    "string",
                ),
                ("salesforceownerid", "Salesforce Owner ID", "string"),
                (
                    "salesforcelastsynctime",
                    "Last Salesforce Sync Time",
                    "datetime",
                ),
            ],
        ),
    ];
    for (t, props) in sets {
        match store
            .create_property_group(
                account,
                t,
                kontor_store::PropertyGroup {
                    name: "salesforceinformation".into(),
                    label: "Salesforce information".into(),
                    display_order: -1,
                    archived: false,
                },
            )
            .await
        {
            Ok(_) | Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
        for (name, label, kind) in *props {
            if store.property(account, t, name).await?.is_some() {
                continue;
            }
            let input = kontor_store::PropertyInput {
                name: Some((*name).into()),
                label: Some((*label).into()),
                kind: Some((*kind).into()),
                field_type: Some(if *kind == "datetime" { "date" } else { "text" }.into()),
                group_name: Some("salesforceinformation".into()),
                ..Default::default()
            };
            match store.create_property(account, t, input).await {
                Ok(_) | Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// An inclusion list ready to test contacts: its filter groups (OR of ANDs) and the kinds of
/// the properties they name.
pub type Inclusion = (
    Vec<Vec<kontor_domain::search::Filter>>,
    std::collections::HashMap<String, kontor_domain::property::PropertyType>,
);

/// Reads an inclusion filter (`{"filterGroups": …}`, as the search API takes them) against
/// the contacts' properties; the message says what is wrong with it.
pub fn inclusion(
    filter: &Value,
    defs: &[kontor_domain::property::PropertyDef],
) -> Result<Inclusion, String> {
    let req = kontor_domain::search::SearchRequest::parse(filter).map_err(|e| e.to_string())?;
    if req.filter_groups.is_empty() {
        return Err("an inclusion list needs at least one filter".into());
    }
    let mut kinds = std::collections::HashMap::new();
    for f in req.filter_groups.iter().flatten() {
        let def = defs
            .iter()
            .find(|d| d.name == f.property)
            .ok_or_else(|| format!("contacts have no property {:?}", f.property))?;
        kinds.insert(f.property.clone(), def.kind);
    }
    Ok((req.filter_groups, kinds))
}

/// Whether a contact's values fall in the inclusion list.
pub fn included(
    groups: &[Vec<kontor_domain::search::Filter>],
    kinds: &std::collections::HashMap<String, kontor_domain::property::PropertyType>,
    props: &std::collections::BTreeMap<String, String>,
) -> bool {
    groups.iter().any(|g| {
        g.iter().all(|f| {
            kinds
                .get(&f.property)
                .is_some_and(|k| f.matches(*k, props.get(&f.property).map(String::as_str)))
        })
    })
}

/// A Salesforce value as kontor text: datetimes to ISO with `Z`, numbers and booleans as
/// text, null and empty as none.
pub fn from_salesforce(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(salesforce_datetime(s).unwrap_or_else(|| s.clone())),
        other => Some(other.to_string()),
    }
}

/// `2026-12-06T20:17:23.000+0000` → `2026-12-06T20:17:23.000Z`; other text: `None`.
pub fn salesforce_datetime(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if s.len() == 28 && b[10] == b'T' && b[4] == b'-' && (b[23] == b'+' || b[23] == b'-') {
        let offset = &s[23..];
        if offset == "+0000" || offset == "-0000" {
            return Some(format!("{}Z", &s[..23]));
        }
        return Some(format!("{}{}:{}", &s[..23], &s[23..26], &s[26..]));
    }
    None
}

/// A kontor value as the JSON a Salesforce field of type `kind` takes.
pub fn to_salesforce(kind: &str, v: Option<&str>) -> Value {
    let Some(v) = v.filter(|s| !s.is_empty()) else {
        return Value::Null;
    };
    match kind {
        "double" | "currency" | "percent" => v
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        "int" => v
            .parse::<f64>()
            .map_or(Value::Null, |f| Value::from(f.round() as i64)),
        "boolean" => Value::Bool(v == "true"),
        "date" => Value::String(v.chars().take(10).collect()),
        _ => Value::String(v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_cross_both_ways() {
        assert_eq!(
            from_salesforce(&json!("2026-12-06T20:17:23.000+0000")).as_deref(),
            Some("2026-12-06T20:17:23.000Z")
        );
        assert_eq!(
            from_salesforce(&json!("2026-12-06T20:17:23.000+0130")).as_deref(),
            Some("2026-12-06T20:17:23.000+01:30")
        );
        assert_eq!(from_salesforce(&json!("")), None);
        assert_eq!(from_salesforce(&json!(5000.5)).as_deref(), Some("5000.5"));
        assert_eq!(from_salesforce(&json!(true)).as_deref(), Some("true"));
        assert_eq!(
            to_salesforce("date", Some("2026-12-06T00:00:00.000Z")),
            json!("2026-12-06")
        );
        assert_eq!(to_salesforce("currency", Some("12.5")), json!(12.5));
        assert_eq!(to_salesforce("int", Some("12")), json!(12));
        assert_eq!(to_salesforce("string", Some("")), Value::Null);
        assert_eq!(to_salesforce("boolean", Some("true")), json!(true));
    }

    #[test]
    fn every_default_mapping_is_two_way_and_unique() {
        let m = default_mappings();
        let mut seen = std::collections::HashSet::new();
        for x in &m {
            assert!(
                seen.insert((x.sf_type.clone(), x.sf_field.clone())),
                "{x:?}"
            );
            assert_eq!(x.rule, RULE_TWO_WAY);
        }
        assert!(m
            .iter()
            .any(|x| x.sf_type == "Opportunity" && x.property == "dealstage"));
    }
}
