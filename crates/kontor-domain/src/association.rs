//! HubSpot-defined association types between built-in objects (from the official client's
//! `AssociationType` enum). Pairs not listed get account-specific types on first use.

/// `(from, to, type id, label, inverse type id, is the pair's default type)`.
/// Object names are singular.
pub type TypeRow = (
    &'static str,
    &'static str,
    i64,
    Option<&'static str>,
    i64,
    bool,
);

pub const HUBSPOT_DEFINED: &[TypeRow] = &[
    ("contact", "company", 1, Some("Primary"), 2, false),
    ("company", "contact", 2, Some("Primary"), 1, false),
    ("contact", "company", 279, None, 280, true),
    ("company", "contact", 280, None, 279, true),
    ("deal", "contact", 3, None, 4, true),
    ("contact", "deal", 4, None, 3, true),
    ("deal", "company", 5, Some("Primary"), 6, false),
    ("company", "deal", 6, Some("Primary"), 5, false),
    ("deal", "company", 341, None, 342, true),
    ("company", "deal", 342, None, 341, true),
    ("contact", "ticket", 15, None, 16, true),
    ("ticket", "contact", 16, None, 15, true),
    ("company", "ticket", 25, Some("Primary"), 26, false),
    ("ticket", "company", 26, Some("Primary"), 25, false),
    ("company", "ticket", 340, None, 339, true),
    ("ticket", "company", 339, None, 340, true),
    ("deal", "line_item", 19, None, 20, true),
    ("line_item", "deal", 20, None, 19, true),
    ("deal", "ticket", 27, None, 28, true),
    ("ticket", "deal", 28, None, 27, true),
    ("company", "call", 181, None, 182, true),
    ("call", "company", 182, None, 181, true),
    ("company", "email", 185, None, 186, true),
    ("email", "company", 186, None, 185, true),
    ("company", "meeting", 187, None, 188, true),
    ("meeting", "company", 188, None, 187, true),
    ("company", "note", 189, None, 190, true),
    ("note", "company", 190, None, 189, true),
    ("company", "task", 191, None, 192, true),
    ("task", "company", 192, None, 191, true),
    ("contact", "call", 193, None, 194, true),
    ("call", "contact", 194, None, 193, true),
    ("contact", "email", 197, None, 198, true),
    ("email", "contact", 198, None, 197, true),
    ("contact", "meeting", 199, None, 200, true),
    ("meeting", "contact", 200, None, 199, true),
    ("contact", "note", 201, None, 202, true),
    ("note", "contact", 202, None, 201, true),
    ("contact", "task", 203, None, 204, true),
    ("task", "contact", 204, None, 203, true),
    ("deal", "call", 205, None, 206, true),
    ("call", "deal", 206, None, 205, true),
    ("deal", "email", 209, None, 210, true),
    ("email", "deal", 210, None, 209, true),
    ("deal", "meeting", 211, None, 212, true),
    ("meeting", "deal", 212, None, 211, true),
    ("deal", "note", 213, None, 214, true),
    ("note", "deal", 214, None, 213, true),
    ("deal", "task", 215, None, 216, true),
    ("task", "deal", 216, None, 215, true),
    ("ticket", "call", 219, None, 220, true),
    ("call", "ticket", 220, None, 219, true),
    ("ticket", "email", 223, None, 224, true),
    ("email", "ticket", 224, None, 223, true),
    ("ticket", "meeting", 225, None, 226, true),
    ("meeting", "ticket", 226, None, 225, true),
    ("ticket", "note", 227, None, 228, true),
    ("note", "ticket", 228, None, 227, true),
    ("ticket", "task", 229, None, 230, true),
    ("task", "ticket", 230, None, 229, true),
    ("call", "meeting", 399, None, 400, true),
    ("meeting", "call", 400, None, 399, true),
];

/// The v3 name of a HubSpot-defined type: `contact_to_company`, and `…_unlabeled` for the
/// default type of a pair that also has a labelled (primary) type.
pub fn v3_name(from: &str, to: &str, type_id: i64) -> String {
    let row = HUBSPOT_DEFINED
        .iter()
        .find(|r| r.2 == type_id && r.0 == from && r.1 == to);
    let pair_has_label = HUBSPOT_DEFINED
        .iter()
        .any(|r| r.0 == from && r.1 == to && r.3.is_some());
    match row {
        Some(r) if r.5 && pair_has_label => format!("{from}_to_{to}_unlabeled"),
        _ => format!("{from}_to_{to}"),
    }
}
