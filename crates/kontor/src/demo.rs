//! The demo account: made once, with sample data of every kind; later runs reuse it and hand
//! out a fresh password and token (the old ones cannot be shown again: only hashes are kept).

use anyhow::{Context, Result};
use kontor_domain::{ChangeSource, Region, Role, Tier};
use kontor_store::{
    Actor, AssociationInput, CreateInput, Directory, ObjectType, SchemaInput, Store,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

pub const DEMO_ACCOUNT: &str = "Demo Company";
pub const DEMO_EMAIL: &str = "admin@demo.kontor.test";

pub struct Credentials {
    pub account_id: i64,
    pub account_name: String,
    pub email: String,
    pub password: String,
    pub token: String,
}

const FIRST: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Margaret",
    "Ken",
    "Frances",
    "John",
    "Radia",
    "Linus",
    "Sophie",
    "Tim",
    "Katherine",
    "Dennis",
];
const LAST: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Hamilton",
    "Thompson",
    "Allen",
    "Backus",
    "Perlman",
    "Torvalds",
    "Wilson",
    "Berners-Lee",
    "Johnson",
    "Ritchie",
];
const WORDS: &[&str] = &[
    "Nordic", "Atlas", "Harbor", "Summit", "Cedar", "Granite", "Aurora", "Beacon", "Delta",
    "Vertex", "Meridian", "Orbit", "Pioneer", "Quartz", "Signal", "Tundra",
];
const KINDS: &[&str] = &[
    "Systems",
    "Logistics",
    "Foods",
    "Labs",
    "Energy",
    "Studio",
    "Partners",
    "Works",
];

fn props(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn pick<'a>(rng: &mut StdRng, list: &[&'a str]) -> &'a str {
    list[rng.gen_range(0..list.len())]
}

pub async fn ensure(dir: &Directory) -> Result<Credentials> {
    let password = crate::generate_password();
    let account = match dir.account_by_name(DEMO_ACCOUNT).await? {
        Some(a) => {
            let store = dir.cell(&a)?;
            let user = store
                .users(a.id)
                .await?
                .into_iter()
                .find(|u| u.email == DEMO_EMAIL)
                .context("demo admin user is missing")?;
            store.set_password(a.id, user.id, &password).await?;
            for t in store.tokens(a.id).await? {
                if t.name == "demo" && t.revoked_at.is_none() {
                    store.revoke_token(a.id, t.id, None).await?;
                }
            }
            a
        }
        None => {
            let a = dir
                .create_account(DEMO_ACCOUNT, Region::Us, Tier::Enterprise)
                .await?;
            let store = dir.cell(&a)?;
            dir.create_user(&a, DEMO_EMAIL, "Demo", "Admin", Role::SuperAdmin, &password)
                .await?;
            fill(store, a.id)
                .await
                .context("filling the demo account")?;
            a
        }
    };
    let (_, token) = dir
        .cell(&account)?
        .create_token(account.id, "demo", None)
        .await?;
    Ok(Credentials {
        account_id: account.id,
        account_name: account.name,
        email: DEMO_EMAIL.into(),
        password,
        token,
    })
}

async fn create_all(
    store: &Store,
    account: i64,
    ot: &ObjectType,
    inputs: Vec<CreateInput>,
) -> Result<Vec<i64>> {
    let actor = Actor {
        source: ChangeSource::Import,
        source_id: Some("demo".into()),
        user_id: None,
    };
    let mut ids = Vec::with_capacity(inputs.len());
    let mut inputs = inputs.into_iter().peekable();
    while inputs.peek().is_some() {
        let chunk: Vec<CreateInput> = inputs.by_ref().take(100).collect();
        ids.extend(
            store
                .create_records(account, ot, chunk, &actor)
                .await?
                .into_iter()
                .map(|r| r.id),
        );
    }
    Ok(ids)
}

fn with(properties: Map<String, Value>, to: &[(i64, i64)]) -> CreateInput {
    CreateInput {
        properties,
        associations: to
            .iter()
            .map(|(id, t)| AssociationInput {
                to_id: *id,
                types: vec![("HUBSPOT_DEFINED".into(), *t)],
            })
            .collect(),
    }
}

async fn fill(store: &Store, account: i64) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(7);
    let ot = |name: &str| {
        let name = name.to_string();
        async move {
            store
                .object_type(account, &name)
                .await?
                .context("built-in object type")
        }
    };
    let mut owners = Vec::new();
    for (first, last) in [
        ("Maja", "Lind"),
        ("Jonas", "Berg"),
        ("Chloé", "Martin"),
        ("Piotr", "Nowak"),
        ("Lena", "Schmidt"),
    ] {
        let email = format!(
            "{}.{}@demo.kontor.test",
            first.to_lowercase().replace('é', "e"),
            last.to_lowercase()
        );
        owners.push(
            store
                .create_owner(account, &email, first, last, None)
                .await?
                .id,
        );
    }
    let now = kontor_domain::time::now_ms();
    let day = 86_400_000i64;

    let companies = ot("companies").await?;
    let mut inputs = Vec::new();
    for i in 0..200 {
        let name = format!(
            "{} {} {}",
            pick(&mut rng, WORDS),
            pick(&mut rng, KINDS),
            i + 1
        );
        let domain = format!("{}.example", name.to_lowercase().replace(' ', "-"));
        inputs.push(with(
            props(&[
                ("name", json!(name)),
                ("domain", json!(domain)),
                (
                    "industry",
                    json!(pick(
                        &mut rng,
                        &["Software", "Retail", "Manufacturing", "Finance", "Health"]
                    )),
                ),
                (
                    "city",
                    json!(pick(
                        &mut rng,
                        &["Stockholm", "Paris", "Warsaw", "Berlin", "Austin", "Lyon"]
                    )),
                ),
                ("numberofemployees", json!(rng.gen_range(5..5000))),
                ("annualrevenue", json!(rng.gen_range(100_000..90_000_000))),
                (
                    "lifecyclestage",
                    json!(pick(&mut rng, &["lead", "opportunity", "customer"])),
                ),
                (
                    "hubspot_owner_id",
                    json!(owners[rng.gen_range(0..owners.len())].to_string()),
                ),
            ]),
            &[],
        ));
    }
    let company_ids = create_all(store, account, &companies, inputs).await?;

    let contacts = ot("contacts").await?;
    let mut inputs = Vec::new();
    for i in 0..1000 {
        let (first, last) = (pick(&mut rng, FIRST), pick(&mut rng, LAST));
        let company = company_ids[i % company_ids.len()];
        inputs.push(with(
            props(&[
                ("firstname", json!(first)),
                ("lastname", json!(last)),
                (
                    "email",
                    json!(format!(
                        "{}.{}{}@example.com",
                        first.to_lowercase(),
                        last.to_lowercase(),
                        i + 1
                    )),
                ),
                (
                    "phone",
                    json!(format!(
                        "+46 8 {:03} {:04}",
                        rng.gen_range(100..999),
                        rng.gen_range(0..9999)
                    )),
                ),
                (
                    "jobtitle",
                    json!(pick(
                        &mut rng,
                        &[
                            "CEO",
                            "CTO",
                            "Engineer",
                            "Buyer",
                            "Account Manager",
                            "Designer"
                        ]
                    )),
                ),
                (
                    "lifecyclestage",
                    json!(pick(
                        &mut rng,
                        &["subscriber", "lead", "marketingqualifiedlead", "customer"]
                    )),
                ),
                (
                    "hs_lead_status",
                    json!(pick(&mut rng, &["NEW", "OPEN", "IN_PROGRESS", "CONNECTED"])),
                ),
                (
                    "hubspot_owner_id",
                    json!(owners[rng.gen_range(0..owners.len())].to_string()),
                ),
            ]),
            &[(company, 1)],
        ));
    }
    let contact_ids = create_all(store, account, &contacts, inputs).await?;

    let deals = ot("deals").await?;
    let mut inputs = Vec::new();
    for i in 0..300 {
        let company = company_ids[rng.gen_range(0..company_ids.len())];
        let contact = contact_ids[rng.gen_range(0..contact_ids.len())];
        inputs.push(with(
            props(&[
                (
                    "dealname",
                    json!(format!("{} deal {}", pick(&mut rng, WORDS), i + 1)),
                ),
                ("amount", json!(rng.gen_range(1_000..250_000))),
                ("pipeline", json!("default")),
                (
                    "dealstage",
                    json!(pick(
                        &mut rng,
                        &[
                            "appointmentscheduled",
                            "qualifiedtobuy",
                            "contractsent",
                            "closedwon",
                            "closedlost"
                        ]
                    )),
                ),
                ("closedate", json!(now + rng.gen_range(-60..120) * day)),
                (
                    "hubspot_owner_id",
                    json!(owners[rng.gen_range(0..owners.len())].to_string()),
                ),
            ]),
            &[(company, 5), (contact, 3)],
        ));
    }
    create_all(store, account, &deals, inputs).await?;

    let tickets = ot("tickets").await?;
    let mut inputs = Vec::new();
    for i in 0..100 {
        let contact = contact_ids[rng.gen_range(0..contact_ids.len())];
        inputs.push(with(
            props(&[
                (
                    "subject",
                    json!(format!(
                        "{} issue #{}",
                        pick(&mut rng, &["Login", "Billing", "Export", "Sync"]),
                        i + 1
                    )),
                ),
                (
                    "content",
                    json!("Customer reported a problem; see the call notes."),
                ),
                ("hs_pipeline", json!("0")),
                (
                    "hs_pipeline_stage",
                    json!(pick(&mut rng, &["1", "2", "3", "4"])),
                ),
                (
                    "hs_ticket_priority",
                    json!(pick(&mut rng, &["LOW", "MEDIUM", "HIGH"])),
                ),
            ]),
            &[(contact, 16)],
        ));
    }
    create_all(store, account, &tickets, inputs).await?;

    let products = ot("products").await?;
    let inputs = (0..50)
        .map(|i| {
            with(
                props(&[
                    (
                        "name",
                        json!(format!(
                            "{} {}",
                            pick(&mut rng, WORDS),
                            pick(&mut rng, &["Licence", "Support plan", "Add-on", "Seat"])
                        )),
                    ),
                    ("price", json!(format!("{}.00", rng.gen_range(10..5000)))),
                    ("hs_sku", json!(format!("SKU-{:04}", i + 1))),
                    (
                        "recurringbillingfrequency",
                        json!(pick(&mut rng, &["monthly", "quarterly", "annually"])),
                    ),
                ]),
                &[],
            )
        })
        .collect();
    create_all(store, account, &products, inputs).await?;

    let calls = ot("calls").await?;
    let mut inputs = Vec::new();
    for i in 0..300 {
        let contact = contact_ids[rng.gen_range(0..contact_ids.len())];
        inputs.push(with(
            props(&[
                ("hs_timestamp", json!(now - rng.gen_range(0..365) * day)),
                ("hs_call_title", json!(format!("Call {}", i + 1))),
                ("hs_call_body", json!("Discussed next steps.")),
                ("hs_call_duration", json!(rng.gen_range(30_000..3_600_000))),
                (
                    "hs_call_direction",
                    json!(pick(&mut rng, &["INBOUND", "OUTBOUND"])),
                ),
                ("hs_call_status", json!("COMPLETED")),
            ]),
            &[(contact, 194)],
        ));
    }
    create_all(store, account, &calls, inputs).await?;

    let tasks = ot("tasks").await?;
    let mut inputs = Vec::new();
    for i in 0..300 {
        let contact = contact_ids[rng.gen_range(0..contact_ids.len())];
        inputs.push(with(
            props(&[
                ("hs_timestamp", json!(now + rng.gen_range(-30..60) * day)),
                ("hs_task_subject", json!(format!("Follow up {}", i + 1))),
                (
                    "hs_task_status",
                    json!(pick(&mut rng, &["NOT_STARTED", "IN_PROGRESS", "COMPLETED"])),
                ),
                (
                    "hs_task_priority",
                    json!(pick(&mut rng, &["LOW", "MEDIUM", "HIGH"])),
                ),
                (
                    "hs_task_type",
                    json!(pick(&mut rng, &["CALL", "EMAIL", "TODO"])),
                ),
            ]),
            &[(contact, 204)],
        ));
    }
    create_all(store, account, &tasks, inputs).await?;

    let conversations = ot("conversations").await?;
    let mut inputs = Vec::new();
    for i in 0..100 {
        let contact = contact_ids[rng.gen_range(0..contact_ids.len())];
        let mut input = with(
            props(&[
                ("hs_timestamp", json!(now - rng.gen_range(0..90) * day)),
                (
                    "hs_conversation_subject",
                    json!(format!("Question {}", i + 1)),
                ),
                (
                    "hs_conversation_body",
                    json!("Hello, I have a question about my order."),
                ),
                (
                    "hs_conversation_channel",
                    json!(pick(&mut rng, &["EMAIL", "CHAT", "FORM"])),
                ),
                (
                    "hs_conversation_status",
                    json!(pick(&mut rng, &["OPEN", "CLOSED"])),
                ),
            ]),
            &[],
        );
        // Conversations have no HubSpot-defined types: the account's default type is used.
        input.associations.push(AssociationInput {
            to_id: contact,
            types: vec![],
        });
        inputs.push(input);
    }
    create_all(store, account, &conversations, inputs).await?;

    let schema: SchemaInput = serde_json::from_value(json!({
        "name": "projects",
        "labels": {"singular": "Project", "plural": "Projects"},
        "primaryDisplayProperty": "project_name",
        "requiredProperties": ["project_name"],
        "searchableProperties": ["project_name"],
        "properties": [
            {"name": "project_name", "label": "Project name", "type": "string", "fieldType": "text"},
            {"name": "budget", "label": "Budget", "type": "number", "fieldType": "number"},
            {"name": "status", "label": "Status", "type": "enumeration", "fieldType": "select",
             "options": [{"label": "Planned", "value": "planned"}, {"label": "Active", "value": "active"}, {"label": "Done", "value": "done"}]}
        ],
        "associatedObjects": ["COMPANY", "CONTACT"]
    }))?;
    let s = store.create_schema(account, schema).await?;
    let projects = ObjectType::custom(&s);
    let mut inputs = Vec::new();
    for i in 0..40 {
        let company = company_ids[rng.gen_range(0..company_ids.len())];
        let mut input = with(
            props(&[
                (
                    "project_name",
                    json!(format!("{} rollout {}", pick(&mut rng, WORDS), i + 1)),
                ),
                ("budget", json!(rng.gen_range(5_000..500_000))),
                (
                    "status",
                    json!(pick(&mut rng, &["planned", "active", "done"])),
                ),
            ]),
            &[],
        );
        input.associations.push(AssociationInput {
            to_id: company,
            types: vec![],
        });
        inputs.push(input);
    }
    create_all(store, account, &projects, inputs).await?;
    Ok(())
}
