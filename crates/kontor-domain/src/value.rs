//! Property values: what a client sends becomes the canonical string kontor stores.
//!
//! On the wire every value is a string (or null). On input HubSpot accepts strings, numbers and
//! booleans; dates and datetimes also as epoch milliseconds. An empty string clears a value.

use crate::property::{PropertyDef, PropertyType};
use crate::time;
use serde_json::Value;

/// Why a value was refused; `code` follows HubSpot's error names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValueError {
    pub code: &'static str,
    pub message: String,
}

fn invalid(code: &'static str, message: String) -> ValueError {
    ValueError { code, message }
}

/// The longest value kontor stores for one property (HubSpot's limit is 65,536 characters).
pub const MAX_VALUE_LEN: usize = 65_536;

/// Turns a client-supplied JSON value into the canonical stored string, `None` meaning
/// "clear the value".
pub fn normalize(def: &PropertyDef, raw: &Value) -> Result<Option<String>, ValueError> {
    let text = match raw {
        Value::Null => return Ok(None),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(_) | Value::Object(_) => {
            return Err(invalid(
                "INVALID_TYPE",
                format!(
                    "{} was not a valid {}: expected a string, number or boolean",
                    def.name,
                    def.kind.as_str()
                ),
            ))
        }
    };
    normalize_str(def, &text)
}

pub fn normalize_str(def: &PropertyDef, text: &str) -> Result<Option<String>, ValueError> {
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > MAX_VALUE_LEN {
        return Err(invalid(
            "INVALID_LENGTH",
            format!("{} is longer than {MAX_VALUE_LEN} characters", def.name),
        ));
    }
    let name = &def.name;
    match def.kind {
        // HubSpot checks the contact's e-mail address (the property every import matches on).
        PropertyType::String if name == "email" && def.hubspot_defined => {
            let t = text.trim();
            let valid = t.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains('@')
            }) && !t.chars().any(|c| c.is_whitespace() || c.is_control());
            if valid {
                Ok(Some(t.to_string()))
            } else {
                Err(invalid(
                    "INVALID_EMAIL",
                    format!("Email address {t} is invalid"),
                ))
            }
        }
        PropertyType::String => Ok(Some(text.to_string())),
        PropertyType::Number => {
            let t = text.trim();
            match t.parse::<f64>() {
                Ok(n) if n.is_finite() && !t.starts_with('+') && !t.contains(['e', 'E', 'x']) => {
                    Ok(Some(t.to_string()))
                }
                _ => Err(invalid(
                    "INVALID_INTEGER",
                    format!("{text:?} was not a valid number for {name}"),
                )),
            }
        }
        PropertyType::Bool => match text.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(Some("true".into())),
            "false" => Ok(Some("false".into())),
            _ => Err(invalid(
                "INVALID_BOOLEAN",
                format!("{text:?} was not a valid boolean for {name}: use true or false"),
            )),
        },
        PropertyType::Date => {
            let ms = time::parse_instant(text).ok_or_else(|| {
                invalid(
                    "INVALID_DATE",
                    format!("{text:?} was not a valid date for {name}"),
                )
            })?;
            if ms.rem_euclid(86_400_000) != 0 {
                return Err(invalid(
                    "INVALID_DATE",
                    format!("{text:?} for {name} is not at midnight UTC"),
                ));
            }
            Ok(time::date_string(ms))
        }
        PropertyType::Datetime => {
            let ms = time::parse_instant(text).ok_or_else(|| {
                invalid(
                    "INVALID_DATETIME",
                    format!("{text:?} was not a valid datetime for {name}"),
                )
            })?;
            Ok(Some(time::iso(ms)))
        }
        PropertyType::Enumeration => {
            // Owner ids are checked against the owners table by the store, not the options.
            if def.options.is_empty() && def.name == "hubspot_owner_id" {
                return Ok(Some(text.trim().to_string()));
            }
            let multi = def.field_type == "checkbox";
            let parts: Vec<&str> = if multi {
                text.split(';').collect()
            } else {
                vec![text]
            };
            for part in &parts {
                if !def.options.iter().any(|o| o.value == *part) {
                    let allowed: Vec<&str> = def.options.iter().map(|o| o.value.as_str()).collect();
                    return Err(invalid(
                        "INVALID_OPTION",
                        format!(
                            "{part:?} was not one of the allowed options for {name}: [{}]",
                            allowed.join(", ")
                        ),
                    ));
                }
            }
            Ok(Some(parts.join(";")))
        }
    }
}

/// Number view of a stored value, for comparisons and sorting.
pub fn as_number(v: &str) -> Option<f64> {
    v.parse::<f64>().ok().filter(|n| n.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::property::PropertyDef;
    use proptest::prelude::*;
    use serde_json::json;

    fn def(kind: PropertyType) -> PropertyDef {
        PropertyDef::new("p", "P", kind, "g")
    }

    #[test]
    fn numbers() {
        let d = def(PropertyType::Number);
        assert_eq!(normalize(&d, &json!(17)).unwrap().as_deref(), Some("17"));
        assert_eq!(
            normalize(&d, &json!("10.50")).unwrap().as_deref(),
            Some("10.50")
        );
        assert!(normalize(&d, &json!("ten")).is_err());
        assert!(normalize(&d, &json!("NaN")).is_err());
        assert_eq!(normalize(&d, &json!("")).unwrap(), None);
    }

    #[test]
    fn dates() {
        let d = def(PropertyType::Date);
        assert_eq!(
            normalize(&d, &json!(1714521600000i64)).unwrap().as_deref(),
            Some("2024-05-01")
        );
        assert!(normalize(&d, &json!("2024-05-01T10:00:00Z")).is_err());
        let dt = def(PropertyType::Datetime);
        assert_eq!(
            normalize(&dt, &json!("2024-05-01T12:00:00+02:00"))
                .unwrap()
                .as_deref(),
            Some("2024-05-01T10:00:00.000Z")
        );
    }

    #[test]
    fn enumerations() {
        let d = def(PropertyType::Enumeration).with_options(&[("a", "A"), ("b", "B")]);
        assert_eq!(normalize(&d, &json!("a")).unwrap().as_deref(), Some("a"));
        let e = normalize(&d, &json!("c")).unwrap_err();
        assert_eq!(e.code, "INVALID_OPTION");
        assert!(e.message.contains("\"c\""));
        let m = d.clone().field("checkbox");
        assert_eq!(
            normalize(&m, &json!("a;b")).unwrap().as_deref(),
            Some("a;b")
        );
        assert!(normalize(&d, &json!("a;b")).is_err());
    }

    #[test]
    fn booleans_and_objects() {
        let d = def(PropertyType::Bool);
        assert_eq!(
            normalize(&d, &json!(true)).unwrap().as_deref(),
            Some("true")
        );
        assert_eq!(
            normalize(&d, &json!("FALSE")).unwrap().as_deref(),
            Some("false")
        );
        assert!(normalize(&d, &json!("yes")).is_err());
        assert!(normalize(&def(PropertyType::String), &json!({"a": 1})).is_err());
    }

    fn any_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
                .map_or(serde_json::Value::Null, serde_json::Value::Number)),
            ".{0,40}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                prop::collection::hash_map(".{0,8}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever arrives, the parser answers Ok or a ValueError, and an accepted value is
        /// a fixed point: normalising it again gives the same string.
        #[test]
        fn never_panics_and_is_idempotent(v in any_json(), kind in 0usize..6) {
            let kinds = [PropertyType::String, PropertyType::Number, PropertyType::Date,
                         PropertyType::Datetime, PropertyType::Enumeration, PropertyType::Bool];
            let d = def(kinds[kind]).with_options(&[("a", "A"), ("true", "Yes"), ("false", "No")]);
            if let Ok(Some(s)) = normalize(&d, &v) {
                prop_assert_eq!(normalize_str(&d, &s).unwrap(), Some(s.clone()));
            }
        }
    }
}
