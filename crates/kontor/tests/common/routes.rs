//! The router's paths made concrete, for tests that call every route.

/// `path` with each `{name}` replaced by its value in `ids`; every parameter must have one.
pub fn concrete(path: &str, ids: &[(&str, String)]) -> String {
    let mut p = path.to_string();
    for (k, v) in ids {
        p = p.replace(&format!("{{{k}}}"), v);
    }
    assert!(!p.contains('{'), "no value for a parameter of {path}");
    p
}

/// A value for every path parameter the router has (ids of things that need not exist).
pub fn sample_ids() -> Vec<(&'static str, String)> {
    [
        ("object_type", "contacts"),
        ("id", "1"),
        ("name", "x"),
        ("from_type", "contacts"),
        ("to_type", "companies"),
        ("from_id", "1"),
        ("to_id", "1"),
        ("type_id", "1"),
        ("association", "1"),
        ("token", "x"),
        ("plan", "1"),
        ("portal", "1"),
        ("guid", "x"),
        ("stage", "1"),
        ("app_id", "1"),
        ("subscription_id", "1"),
        ("sf_type", "Contact"),
        ("field", "Department"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect()
}
