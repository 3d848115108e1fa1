#![doc = include_str!("../README.md")]

pub mod object_type;
pub mod pipeline;
pub mod property;
pub mod search;
pub mod time;
pub mod value;

pub use object_type::{BuiltinObject, ObjectTypeId, BUILTIN_OBJECTS};
pub use property::{PropertyDef, PropertyOption, PropertyType, Sensitivity};

/// Roles a user can hold inside one account, most powerful first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    SuperAdmin,
    Admin,
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::SuperAdmin => "super-admin",
            Role::Admin => "admin",
            Role::User => "user",
        }
    }
    /// Whether this role holds every permission of `other`.
    pub fn includes(self, other: Role) -> bool {
        self.rank() >= other.rank()
    }
    fn rank(self) -> u8 {
        match self {
            Role::SuperAdmin => 3,
            Role::Admin => 2,
            Role::User => 1,
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "super-admin" | "super_admin" => Some(Role::SuperAdmin),
            "admin" => Some(Role::Admin),
            "user" => Some(Role::User),
            _ => None,
        }
    }
}

/// Data-hosting regions. Each region is a cell with its own database and file store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    Us,
    Eu,
}

impl Region {
    pub const ALL: [Region; 2] = [Region::Us, Region::Eu];
    pub fn as_str(self) -> &'static str {
        match self {
            Region::Us => "us",
            Region::Eu => "eu",
        }
    }
    pub fn parse(s: &str) -> Option<Region> {
        match s {
            "us" => Some(Region::Us),
            "eu" => Some(Region::Eu),
            _ => None,
        }
    }
    /// The region as people name it.
    pub fn label(self) -> &'static str {
        match self {
            Region::Us => "the US",
            Region::Eu => "the EU",
        }
    }
}

/// Subscription tiers; they decide limits such as how often a backup may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Starter,
    Professional,
    Enterprise,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Starter => "starter",
            Tier::Professional => "professional",
            Tier::Enterprise => "enterprise",
        }
    }
    pub fn parse(s: &str) -> Option<Tier> {
        match s {
            "starter" => Some(Tier::Starter),
            "professional" => Some(Tier::Professional),
            "enterprise" => Some(Tier::Enterprise),
            _ => None,
        }
    }

    /// The shortest time between the starts of two backups: a week, or a day on Enterprise.
    pub fn backup_interval_ms(self) -> i64 {
        const DAY: i64 = 24 * 3600 * 1000;
        match self {
            Tier::Starter | Tier::Professional => 7 * DAY,
            Tier::Enterprise => DAY,
        }
    }
}

/// How long a finished backup's file can be downloaded; then it is deleted.
pub const BACKUP_RETENTION_MS: i64 = 14 * 24 * 3600 * 1000;

/// Where a write came from; recorded with every change in the change log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChangeSource {
    Api,
    Ui,
    Import,
    Restore,
    Integration,
    Workflow,
    Migration,
    /// A submission of one of the account's forms.
    Form,
    /// The Salesforce integration's sync, writing what it read from Salesforce.
    Salesforce,
}

impl ChangeSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeSource::Api => "API",
            ChangeSource::Ui => "UI",
            ChangeSource::Import => "IMPORT",
            ChangeSource::Restore => "RESTORE",
            ChangeSource::Integration => "INTEGRATION",
            ChangeSource::Workflow => "WORKFLOW",
            ChangeSource::Migration => "MIGRATION",
            ChangeSource::Form => "FORM",
            ChangeSource::Salesforce => "SALESFORCE",
        }
    }
}

pub mod association;
pub mod name;
