//! Property definitions: the schema of an object type's values.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PropertyType {
    String,
    Number,
    Date,
    Datetime,
    Enumeration,
    Bool,
}

impl PropertyType {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "string" | "phone_number" => Self::String,
            "number" => Self::Number,
            "date" => Self::Date,
            "datetime" => Self::Datetime,
            "enumeration" => Self::Enumeration,
            "bool" => Self::Bool,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Number => "number",
            Self::Date => "date",
            Self::Datetime => "datetime",
            Self::Enumeration => "enumeration",
            Self::Bool => "bool",
        }
    }
    /// The field types HubSpot accepts for this type.
    pub fn allows_field_type(self, field_type: &str) -> bool {
        match self {
            Self::String => matches!(
                field_type,
                "text" | "textarea" | "file" | "html" | "phonenumber"
            ),
            Self::Number => matches!(field_type, "number" | "calculation_equation"),
            Self::Date | Self::Datetime => field_type == "date",
            Self::Enumeration => {
                matches!(
                    field_type,
                    "select" | "radio" | "checkbox" | "booleancheckbox"
                )
            }
            Self::Bool => field_type == "booleancheckbox",
        }
    }
    pub fn default_field_type(self) -> &'static str {
        match self {
            Self::String => "text",
            Self::Number => "number",
            Self::Date | Self::Datetime => "date",
            Self::Enumeration => "select",
            Self::Bool => "booleancheckbox",
        }
    }
}

/// HubSpot's `dataSensitivity`. Backups and the console warn about non-`NonSensitive` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    #[default]
    NonSensitive,
    Sensitive,
    HighlySensitive,
}

impl Sensitivity {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "non_sensitive" => Self::NonSensitive,
            "sensitive" => Self::Sensitive,
            "highly_sensitive" => Self::HighlySensitive,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NonSensitive => "non_sensitive",
            Self::Sensitive => "sensitive",
            Self::HighlySensitive => "highly_sensitive",
        }
    }
    pub fn is_sensitive(self) -> bool {
        self != Self::NonSensitive
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PropertyOption {
    pub label: String,
    pub value: String,
    #[serde(default)]
    pub hidden: bool,
    #[serde(default)]
    pub display_order: i64,
    #[serde(default)]
    pub description: String,
    /// On an option of a stage property: the pipeline the stage belongs to (see
    /// [`crate::pipeline`]). A stage option stored before pipelines could be edited has none
    /// and belongs to the first pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// On a stage option: HubSpot's stage metadata (`probability`, `isClosed`, `ticketState`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub metadata: std::collections::BTreeMap<String, String>,
    /// On a pipeline or stage option: when it was created and last changed; absent on the
    /// options every account starts with, which date from their property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
}

/// One property of one object type in one account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertyDef {
    pub name: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: PropertyType,
    pub field_type: String,
    pub group_name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub options: Vec<PropertyOption>,
    #[serde(default = "minus_one")]
    pub display_order: i64,
    #[serde(default)]
    pub has_unique_value: bool,
    #[serde(default)]
    pub hidden: bool,
    #[serde(default)]
    pub form_field: bool,
    /// Value maintained by kontor itself (ids, timestamps); clients may not write it.
    #[serde(default)]
    pub read_only_value: bool,
    #[serde(default)]
    pub calculated: bool,
    #[serde(default)]
    pub hubspot_defined: bool,
    #[serde(default)]
    pub sensitivity: Sensitivity,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub archived_at: Option<i64>,
    #[serde(default)]
    pub created_at: i64,
    #[serde(default)]
    pub updated_at: i64,
}

fn minus_one() -> i64 {
    -1
}

impl PropertyDef {
    pub fn new(name: &str, label: &str, kind: PropertyType, group: &str) -> Self {
        Self {
            name: name.to_string(),
            label: label.to_string(),
            kind,
            field_type: kind.default_field_type().to_string(),
            group_name: group.to_string(),
            description: String::new(),
            options: Vec::new(),
            display_order: -1,
            has_unique_value: false,
            hidden: false,
            form_field: false,
            read_only_value: false,
            calculated: false,
            hubspot_defined: false,
            sensitivity: Sensitivity::NonSensitive,
            archived: false,
            archived_at: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    pub fn with_options(mut self, values: &[(&str, &str)]) -> Self {
        self.options = values
            .iter()
            .enumerate()
            .map(|(i, (value, label))| PropertyOption {
                label: label.to_string(),
                value: value.to_string(),
                hidden: false,
                display_order: i as i64,
                ..Default::default()
            })
            .collect();
        self
    }

    pub fn field(mut self, field_type: &str) -> Self {
        self.field_type = field_type.to_string();
        self
    }

    pub fn unique(mut self) -> Self {
        self.has_unique_value = true;
        self
    }

    pub fn read_only(mut self) -> Self {
        self.read_only_value = true;
        self.calculated = true;
        self
    }

    /// A valid property internal name: lower-case letters, digits and underscores, starting
    /// with a letter, at most 100 characters.
    pub fn valid_name(name: &str) -> bool {
        let mut chars = name.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
            && name.len() <= 100
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(PropertyDef::valid_name("favorite_color2"));
        assert!(!PropertyDef::valid_name("2x"));
        assert!(!PropertyDef::valid_name("Bad-Name"));
        assert!(!PropertyDef::valid_name(""));
    }

    #[test]
    fn field_type_pairs() {
        assert!(PropertyType::Bool.allows_field_type("booleancheckbox"));
        assert!(!PropertyType::Number.allows_field_type("text"));
    }
}
