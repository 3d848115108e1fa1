//! Object types: the built-in ones HubSpot defines, and the ids custom ones get.

use crate::property::{PropertyDef, PropertyType as T};

/// An object type id as HubSpot writes it: `0-1` (contacts), `2-7` (a custom object), …
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectTypeId(pub String);

impl ObjectTypeId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn is_custom(&self) -> bool {
        self.0.starts_with("2-")
    }
    pub fn custom(n: i64) -> Self {
        Self(format!("2-{n}"))
    }
}

impl std::fmt::Display for ObjectTypeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A built-in object type and the properties every account starts with.
#[derive(Debug)]
pub struct BuiltinObject {
    pub type_id: &'static str,
    /// Plural API name (`contacts`).
    pub name: &'static str,
    /// Singular name (`contact`), used in v3 association type names.
    pub singular: &'static str,
    pub label_singular: &'static str,
    pub label_plural: &'static str,
    pub group: &'static str,
    pub create_date: &'static str,
    pub last_modified: &'static str,
    pub default_properties: &'static [&'static str],
    pub searchable: &'static [&'static str],
    /// Included in backups (the product's list of backed-up objects).
    pub backed_up: bool,
}

pub const BUILTIN_OBJECTS: &[BuiltinObject] = &[
    BuiltinObject {
        type_id: "0-1",
        name: "contacts",
        singular: "contact",
        label_singular: "Contact",
        label_plural: "Contacts",
        group: "contactinformation",
        create_date: "createdate",
        last_modified: "lastmodifieddate",
        default_properties: &["firstname", "lastname", "email"],
        searchable: &[
            "firstname",
            "lastname",
            "email",
            "phone",
            "company",
            "hs_additional_emails",
            "mobilephone",
            "fax",
        ],
        backed_up: true,
    },
    BuiltinObject {
        type_id: "0-2",
        name: "companies",
        singular: "company",
        label_singular: "Company",
        label_plural: "Companies",
        group: "companyinformation",
        create_date: "createdate",
        last_modified: "hs_lastmodifieddate",
        default_properties: &["name", "domain"],
        searchable: &["name", "domain", "website", "phone"],
        backed_up: true,
    },
    BuiltinObject {
        type_id: "0-3",
        name: "deals",
        singular: "deal",
        label_singular: "Deal",
        label_plural: "Deals",
        group: "dealinformation",
        create_date: "createdate",
        last_modified: "hs_lastmodifieddate",
        default_properties: &["dealname", "amount", "closedate", "pipeline", "dealstage"],
        searchable: &[
            "dealname",
            "pipeline",
            "dealstage",
            "description",
            "dealtype",
        ],
        backed_up: true,
    },
    BuiltinObject {
        type_id: "0-5",
        name: "tickets",
        singular: "ticket",
        label_singular: "Ticket",
        label_plural: "Tickets",
        group: "ticketinformation",
        create_date: "createdate",
        last_modified: "hs_lastmodifieddate",
        default_properties: &[
            "content",
            "hs_pipeline",
            "hs_pipeline_stage",
            "hs_ticket_category",
            "hs_ticket_priority",
            "subject",
        ],
        searchable: &[
            "subject",
            "content",
            "hs_pipeline_stage",
            "hs_ticket_category",
        ],
        backed_up: true,
    },
    BuiltinObject {
        type_id: "0-7",
        name: "products",
        singular: "product",
        label_singular: "Product",
        label_plural: "Products",
        group: "productinformation",
        create_date: "createdate",
        last_modified: "hs_lastmodifieddate",
        default_properties: &["name", "description", "price"],
        searchable: &["name", "description", "hs_sku"],
        backed_up: true,
    },
    BuiltinObject {
        type_id: "0-8",
        name: "line_items",
        singular: "line_item",
        label_singular: "Line item",
        label_plural: "Line items",
        group: "lineiteminformation",
        create_date: "createdate",
        last_modified: "hs_lastmodifieddate",
        default_properties: &["name", "price", "quantity", "amount", "hs_product_id"],
        searchable: &["name", "hs_sku"],
        backed_up: false,
    },
    BuiltinObject {
        type_id: "0-136",
        name: "leads",
        singular: "lead",
        label_singular: "Lead",
        label_plural: "Leads",
        group: "leadinformation",
        create_date: "hs_createdate",
        last_modified: "hs_lastmodifieddate",
        default_properties: &["hs_lead_name", "hs_lead_type", "hs_lead_label"],
        searchable: &["hs_lead_name"],
        backed_up: false,
    },
    BuiltinObject {
        type_id: "0-48",
        name: "calls",
        singular: "call",
        label_singular: "Call",
        label_plural: "Calls",
        group: "callinformation",
        create_date: "hs_createdate",
        last_modified: "hs_lastmodifieddate",
        default_properties: &[],
        searchable: &["hs_call_title", "hs_call_body"],
        backed_up: true,
    },
    BuiltinObject {
        // HubSpot has no CRM object for conversations (0-18 is `communications`), so kontor
        // gives them an id of their own outside HubSpot's range.
        type_id: "0-1018",
        name: "conversations",
        singular: "conversation",
        label_singular: "Conversation",
        label_plural: "Conversations",
        group: "conversationinformation",
        create_date: "hs_createdate",
        last_modified: "hs_lastmodifieddate",
        default_properties: &[],
        searchable: &["hs_conversation_subject", "hs_conversation_body"],
        backed_up: true,
    },
    BuiltinObject {
        type_id: "0-27",
        name: "tasks",
        singular: "task",
        label_singular: "Task",
        label_plural: "Tasks",
        group: "taskinformation",
        create_date: "hs_createdate",
        last_modified: "hs_lastmodifieddate",
        default_properties: &[],
        searchable: &["hs_task_subject", "hs_task_body"],
        backed_up: true,
    },
    BuiltinObject {
        type_id: "0-46",
        name: "notes",
        singular: "note",
        label_singular: "Note",
        label_plural: "Notes",
        group: "noteinformation",
        create_date: "hs_createdate",
        last_modified: "hs_lastmodifieddate",
        default_properties: &[],
        searchable: &["hs_note_body"],
        backed_up: false,
    },
    BuiltinObject {
        type_id: "0-47",
        name: "meetings",
        singular: "meeting",
        label_singular: "Meeting",
        label_plural: "Meetings",
        group: "meetinginformation",
        create_date: "hs_createdate",
        last_modified: "hs_lastmodifieddate",
        default_properties: &[],
        searchable: &["hs_meeting_title", "hs_meeting_body"],
        backed_up: false,
    },
    BuiltinObject {
        type_id: "0-49",
        name: "emails",
        singular: "email",
        label_singular: "Email",
        label_plural: "Emails",
        group: "emailinformation",
        create_date: "hs_createdate",
        last_modified: "hs_lastmodifieddate",
        default_properties: &[],
        searchable: &["hs_email_subject", "hs_email_text"],
        backed_up: false,
    },
];

/// Object types HubSpot has and kontor does not hold: (type id, plural name, singular name,
/// the scope HubSpot asks for to read them). A portal without them answers a request about
/// one with 403 `MISSING_SCOPES`, which sync tools take as "skip this object", where a 400
/// would stop the whole sync.
pub const HUBSPOT_ONLY: &[(&str, &str, &str, &str)] = &[
    ("0-14", "quotes", "quote", "crm.objects.quotes.read"),
    (
        "0-18",
        "communications",
        "communication",
        "crm.objects.communications.read",
    ),
    (
        "0-19",
        "feedback_submissions",
        "feedback_submission",
        "crm.objects.feedback_submissions.read",
    ),
    ("0-53", "invoices", "invoice", "crm.objects.invoices.read"),
    (
        "0-54",
        "marketing_events",
        "marketing_event",
        "crm.objects.marketing_events.read",
    ),
    (
        "0-69",
        "subscriptions",
        "subscription",
        "crm.objects.subscriptions.read",
    ),
    (
        "0-74",
        "goal_targets",
        "goal_target",
        "crm.objects.goals.read",
    ),
    (
        "0-101",
        "payments",
        "payment",
        "crm.objects.commercepayments.read",
    ),
    ("0-115", "users", "user", "crm.objects.users.read"),
    (
        "0-116",
        "postal_mail",
        "postal_mail",
        "crm.objects.postal_mail.read",
    ),
    ("0-123", "orders", "order", "crm.objects.orders.read"),
    ("0-142", "carts", "cart", "crm.objects.carts.read"),
    ("0-162", "services", "service", "crm.objects.services.read"),
    ("0-410", "courses", "course", "crm.objects.courses.read"),
    ("0-420", "listings", "listing", "crm.objects.listings.read"),
    (
        "0-421",
        "appointments",
        "appointment",
        "crm.objects.appointments.read",
    ),
    (
        "deal_split",
        "deal_splits",
        "deal_split",
        "crm.dealsplits.read_write",
    ),
    ("form", "forms", "form", "forms"),
];

/// The scope HubSpot asks for to read `name_or_id`, when it names an object type HubSpot has
/// and kontor does not hold.
pub fn hubspot_only_scope(name_or_id: &str) -> Option<&'static str> {
    let n = name_or_id.to_ascii_lowercase();
    HUBSPOT_ONLY
        .iter()
        .find(|(id, plural, singular, _)| *id == n || *plural == n || *singular == n)
        .map(|(.., scope)| *scope)
}

impl BuiltinObject {
    /// Resolves `contacts`, `contact`, `0-1`, … to a built-in object type.
    pub fn find(name_or_id: &str) -> Option<&'static BuiltinObject> {
        let n = name_or_id.to_ascii_lowercase();
        BUILTIN_OBJECTS
            .iter()
            .find(|o| o.type_id == n || o.name == n || o.singular == n)
    }

    pub fn by_type_id(id: &str) -> Option<&'static BuiltinObject> {
        BUILTIN_OBJECTS.iter().find(|o| o.type_id == id)
    }

    /// Every account starts with these property definitions for this object type.
    pub fn builtin_properties(&self) -> Vec<PropertyDef> {
        let g = self.group;
        let mut props = system_properties(self.create_date, self.last_modified, g);
        let p = |name: &str, label: &str, kind: T| PropertyDef::new(name, label, kind, g);
        let extra: Vec<PropertyDef> = match self.name {
            "contacts" => vec![
                p("email", "Email", T::String).unique(),
                p("firstname", "First Name", T::String),
                p("lastname", "Last Name", T::String),
                p("phone", "Phone Number", T::String).field("phonenumber"),
                p("mobilephone", "Mobile Phone Number", T::String).field("phonenumber"),
                p("fax", "Fax Number", T::String),
                p("company", "Company Name", T::String),
                p("jobtitle", "Job Title", T::String),
                p("website", "Website URL", T::String),
                p("address", "Street Address", T::String),
                p("city", "City", T::String),
                p("state", "State/Region", T::String),
                p("zip", "Postal Code", T::String),
                p("country", "Country/Region", T::String),
                p(
                    "hs_additional_emails",
                    "Additional email addresses",
                    T::String,
                ),
                p("lifecyclestage", "Lifecycle Stage", T::Enumeration).with_options(&[
                    ("subscriber", "Subscriber"),
                    ("lead", "Lead"),
                    ("marketingqualifiedlead", "Marketing Qualified Lead"),
                    ("salesqualifiedlead", "Sales Qualified Lead"),
                    ("opportunity", "Opportunity"),
                    ("customer", "Customer"),
                    ("evangelist", "Evangelist"),
                    ("other", "Other"),
                ]),
                p("hs_lead_status", "Lead Status", T::Enumeration).with_options(&[
                    ("NEW", "New"),
                    ("OPEN", "Open"),
                    ("IN_PROGRESS", "In Progress"),
                    ("OPEN_DEAL", "Open Deal"),
                    ("UNQUALIFIED", "Unqualified"),
                    ("ATTEMPTED_TO_CONTACT", "Attempted to Contact"),
                    ("CONNECTED", "Connected"),
                    ("BAD_TIMING", "Bad Timing"),
                ]),
                p("date_of_birth", "Date of birth", T::Date),
                p("hs_email_optout", "Opted out of all email", T::Bool)
                    .with_options(&[("true", "Yes"), ("false", "No")]),
                p("num_employees", "Number of Employees", T::Number),
                p("annualrevenue", "Annual Revenue", T::Number),
                p("notes_last_contacted", "Last Contacted", T::Datetime),
            ],
            "companies" => vec![
                p("name", "Company name", T::String),
                p("domain", "Company Domain Name", T::String).unique(),
                p("website", "Website URL", T::String),
                p("phone", "Phone Number", T::String).field("phonenumber"),
                p("industry", "Industry", T::String),
                p("city", "City", T::String),
                p("state", "State/Region", T::String),
                p("country", "Country/Region", T::String),
                p("numberofemployees", "Number of Employees", T::Number),
                p("annualrevenue", "Annual Revenue", T::Number),
                p("description", "Description", T::String).field("textarea"),
                p("lifecyclestage", "Lifecycle Stage", T::Enumeration).with_options(&[
                    ("lead", "Lead"),
                    ("opportunity", "Opportunity"),
                    ("customer", "Customer"),
                    ("other", "Other"),
                ]),
                p("founded_year", "Year Founded", T::String),
                p("is_public", "Is Public", T::Bool)
                    .with_options(&[("true", "Yes"), ("false", "No")]),
            ],
            "deals" => vec![
                p("dealname", "Deal Name", T::String),
                p("amount", "Amount", T::Number),
                p("closedate", "Close Date", T::Datetime),
                p("pipeline", "Pipeline", T::Enumeration)
                    .with_options(&[("default", "Sales Pipeline")]),
                p("dealstage", "Deal Stage", T::Enumeration).with_options(&[
                    ("appointmentscheduled", "Appointment Scheduled"),
                    ("qualifiedtobuy", "Qualified To Buy"),
                    ("presentationscheduled", "Presentation Scheduled"),
                    ("decisionmakerboughtin", "Decision Maker Bought-In"),
                    ("contractsent", "Contract Sent"),
                    ("closedwon", "Closed Won"),
                    ("closedlost", "Closed Lost"),
                ]),
                p("dealtype", "Deal Type", T::Enumeration).with_options(&[
                    ("newbusiness", "New Business"),
                    ("existingbusiness", "Existing Business"),
                ]),
                p("description", "Deal Description", T::String).field("textarea"),
                p("hs_priority", "Priority", T::Enumeration).with_options(&[
                    ("low", "Low"),
                    ("medium", "Medium"),
                    ("high", "High"),
                ]),
            ],
            "tickets" => vec![
                p("subject", "Ticket name", T::String),
                p("content", "Ticket description", T::String).field("textarea"),
                p("hs_pipeline", "Pipeline", T::Enumeration)
                    .with_options(&[("0", "Support Pipeline")]),
                p("hs_pipeline_stage", "Ticket status", T::Enumeration).with_options(&[
                    ("1", "New"),
                    ("2", "Waiting on contact"),
                    ("3", "Waiting on us"),
                    ("4", "Closed"),
                ]),
                p("hs_ticket_category", "Category", T::Enumeration).with_options(&[
                    ("PRODUCT_ISSUE", "Product issue"),
                    ("BILLING_ISSUE", "Billing issue"),
                    ("FEATURE_REQUEST", "Feature request"),
                    ("GENERAL_INQUIRY", "General inquiry"),
                ]),
                p("hs_ticket_priority", "Priority", T::Enumeration).with_options(&[
                    ("LOW", "Low"),
                    ("MEDIUM", "Medium"),
                    ("HIGH", "High"),
                    ("URGENT", "Urgent"),
                ]),
            ],
            "line_items" => vec![
                p("name", "Name", T::String),
                p("description", "Description", T::String).field("textarea"),
                p("hs_product_id", "Product ID", T::Number),
                p("hs_sku", "SKU", T::String),
                p("price", "Unit price", T::Number),
                p("quantity", "Quantity", T::Number),
                p("amount", "Net price", T::Number).read_only(),
            ],
            "leads" => vec![
                p("hs_lead_name", "Lead name", T::String),
                p("hs_lead_type", "Lead type", T::Enumeration).with_options(&[
                    ("NEW_BUSINESS", "New Business"),
                    ("UPSELL", "Upsell"),
                    ("RE_ATTEMPTING", "Re-attempting"),
                ]),
                p("hs_lead_label", "Lead label", T::Enumeration).with_options(&[
                    ("COLD", "Cold"),
                    ("WARM", "Warm"),
                    ("HOT", "Hot"),
                ]),
            ],
            "products" => vec![
                p("name", "Name", T::String),
                p("description", "Description", T::String).field("textarea"),
                p("price", "Unit price", T::Number),
                p("hs_sku", "SKU", T::String),
                p("hs_cost_of_goods_sold", "Unit cost", T::Number),
                p(
                    "recurringbillingfrequency",
                    "Billing frequency",
                    T::Enumeration,
                )
                .with_options(&[
                    ("monthly", "Monthly"),
                    ("quarterly", "Quarterly"),
                    ("annually", "Annually"),
                ]),
            ],
            "calls" => vec![
                p("hs_timestamp", "Activity date", T::Datetime),
                p("hs_call_title", "Call Title", T::String),
                p("hs_call_body", "Call notes", T::String).field("textarea"),
                p("hs_call_duration", "Call duration", T::Number),
                p("hs_call_direction", "Call direction", T::Enumeration)
                    .with_options(&[("INBOUND", "Inbound"), ("OUTBOUND", "Outbound")]),
                p("hs_call_status", "Call status", T::Enumeration).with_options(&[
                    ("COMPLETED", "Completed"),
                    ("BUSY", "Busy"),
                    ("NO_ANSWER", "No answer"),
                    ("FAILED", "Failed"),
                ]),
            ],
            "conversations" => vec![
                p("hs_timestamp", "Activity date", T::Datetime),
                p("hs_conversation_subject", "Subject", T::String),
                p("hs_conversation_body", "Body", T::String).field("textarea"),
                p("hs_conversation_channel", "Channel", T::Enumeration).with_options(&[
                    ("EMAIL", "Email"),
                    ("CHAT", "Chat"),
                    ("FORM", "Form"),
                ]),
                p("hs_conversation_status", "Status", T::Enumeration)
                    .with_options(&[("OPEN", "Open"), ("CLOSED", "Closed")]),
            ],
            "tasks" => vec![
                p("hs_timestamp", "Due date", T::Datetime),
                p("hs_task_subject", "Task Title", T::String),
                p("hs_task_body", "Notes", T::String).field("textarea"),
                p("hs_task_status", "Task Status", T::Enumeration).with_options(&[
                    ("NOT_STARTED", "Not started"),
                    ("IN_PROGRESS", "In progress"),
                    ("WAITING", "Waiting"),
                    ("COMPLETED", "Completed"),
                    ("DEFERRED", "Deferred"),
                ]),
                p("hs_task_priority", "Priority", T::Enumeration).with_options(&[
                    ("LOW", "Low"),
                    ("MEDIUM", "Medium"),
                    ("HIGH", "High"),
                ]),
                p("hs_task_type", "Task Type", T::Enumeration).with_options(&[
                    ("CALL", "Call"),
                    ("EMAIL", "Email"),
                    ("TODO", "To-do"),
                ]),
            ],
            "notes" => vec![
                p("hs_timestamp", "Activity date", T::Datetime),
                p("hs_note_body", "Note body", T::String).field("textarea"),
            ],
            "meetings" => vec![
                p("hs_timestamp", "Activity date", T::Datetime),
                p("hs_meeting_title", "Meeting name", T::String),
                p("hs_meeting_body", "Meeting description", T::String).field("textarea"),
                p("hs_meeting_start_time", "Start Time", T::Datetime),
                p("hs_meeting_end_time", "End Time", T::Datetime),
                p("hs_meeting_location", "Location", T::String),
            ],
            "emails" => vec![
                p("hs_timestamp", "Activity date", T::Datetime),
                p("hs_email_subject", "Subject", T::String),
                p("hs_email_text", "Body", T::String).field("textarea"),
                p("hs_email_direction", "Direction", T::Enumeration).with_options(&[
                    ("EMAIL", "Outgoing"),
                    ("INCOMING_EMAIL", "Incoming"),
                    ("FORWARDED_EMAIL", "Forwarded"),
                ]),
            ],
            _ => vec![],
        };
        props.extend(extra);
        props
            .push(PropertyDef::new("hubspot_owner_id", "Owner", T::Enumeration, g).field("select"));
        if MERGEABLE.contains(&self.name) {
            props.push(merged_ids_property(g));
        }
        for (i, prop) in props.iter_mut().enumerate() {
            prop.hubspot_defined = true;
            prop.display_order = i as i64;
        }
        props
    }
}

/// The object types whose records can be merged.
pub const MERGEABLE: &[&str] = &["contacts", "companies", "deals", "tickets"];

/// The ids of the records merged into a record, `;`-separated, as HubSpot names it.
pub const MERGED_IDS: &str = "hs_merged_object_ids";

pub fn merged_ids_property(group: &str) -> PropertyDef {
    PropertyDef::new(MERGED_IDS, "Merged record IDs", T::String, group).read_only()
}

/// Properties kontor maintains on every record of every object type.
pub fn system_properties(create_date: &str, last_modified: &str, group: &str) -> Vec<PropertyDef> {
    let mut id = PropertyDef::new("hs_object_id", "Record ID", T::Number, group).read_only();
    id.has_unique_value = true;
    vec![
        id,
        PropertyDef::new(create_date, "Create Date", T::Datetime, group).read_only(),
        PropertyDef::new(last_modified, "Last Modified Date", T::Datetime, group).read_only(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names() {
        assert_eq!(BuiltinObject::find("contact").unwrap().type_id, "0-1");
        assert_eq!(BuiltinObject::find("0-3").unwrap().name, "deals");
        assert_eq!(BuiltinObject::find("COMPANIES").unwrap().name, "companies");
        assert!(BuiltinObject::find("widgets").is_none());
    }

    #[test]
    fn builtin_properties_are_unique_by_name() {
        for o in BUILTIN_OBJECTS {
            let props = o.builtin_properties();
            let mut names: Vec<_> = props.iter().map(|p| p.name.as_str()).collect();
            names.sort_unstable();
            let before = names.len();
            names.dedup();
            assert_eq!(before, names.len(), "{}", o.name);
            for d in o.default_properties {
                assert!(props.iter().any(|p| p.name == *d), "{} {}", o.name, d);
            }
        }
    }
}
