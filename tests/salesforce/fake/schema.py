"""The org's objects and fields, and their describe shapes.

Field metadata drives everything else: write validation (createable, updateable, nillable,
length, picklists, references), SOQL type checks (filterable, sortable, types) and the
describe resources. Custom fields added through the control API join the same tables.
"""

import re

from ids import KEY_PREFIXES

STRING_TYPES = {"string", "textarea", "email", "phone", "url", "picklist", "multipicklist", "combobox"}
NUMBER_TYPES = {"int", "double", "currency", "percent"}
SOAP_TYPES = {
    "id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "int": "xsd:int",
    "double": "xsd:double", "currency": "xsd:double", "percent": "xsd:double",
    "date": "xsd:date", "datetime": "xsd:dateTime",
}
CUSTOM_FIELD_TYPES = STRING_TYPES - {"combobox"} | NUMBER_TYPES | {"boolean", "date", "datetime", "reference"}

# Standard stages: (value, probability, closed, won).
OPPORTUNITY_STAGES = [
    ("Prospecting", 10, False, False),
    ("Qualification", 10, False, False),
    ("Needs Analysis", 20, False, False),
    ("Value Proposition", 50, False, False),
    ("Id. Decision Makers", 60, False, False),
    ("Perception Analysis", 70, False, False),
    ("Proposal/Price Quote", 75, False, False),
    ("Negotiation/Review", 90, False, False),
    ("Closed Won", 100, True, True),
    ("Closed Lost", 0, True, False),
]
STAGE_INFO = {s[0]: s for s in OPPORTUNITY_STAGES}
LEAD_STATUSES = ["Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted"]
LEAD_CONVERTED_STATUS = "Closed - Converted"
TASK_STATUSES = ["Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred"]
TASK_CLOSED_STATUSES = {"Completed"}
LEAD_SOURCES = ["Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"]
INDUSTRIES = [
    "Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications",
    "Construction", "Consulting", "Education", "Electronics", "Energy", "Engineering",
    "Entertainment", "Environmental", "Finance", "Food & Beverage", "Government", "Healthcare",
    "Hospitality", "Insurance", "Machinery", "Manufacturing", "Media", "Not For Profit",
    "Recreation", "Retail", "Shipping", "Technology", "Telecommunications", "Transportation",
    "Utilities", "Other",
]
ACCOUNT_TYPES = [
    "Prospect", "Customer - Direct", "Customer - Channel", "Channel Partner / Reseller",
    "Installation Partner", "Technology Partner", "Other",
]
OPPORTUNITY_TYPES = [
    "Existing Customer - Upgrade", "Existing Customer - Replacement",
    "Existing Customer - Downgrade", "New Customer",
]


def _label(name: str) -> str:
    base = name[:-3] if name.endswith("__c") else name
    if base.endswith("Id") and len(base) > 2:
        base = base[:-2] + " ID"
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", base).replace("_", " ")


class Field:
    def __init__(self, name, type, label=None, length=0, nillable=True, createable=True,
                 updateable=True, custom=False, external_id=False, calculated=False,
                 default=None, picklist=None, restricted=False, reference_to=(),
                 relationship_name=None, unique=False, id_lookup=False,
                 defaulted_on_create=False, precision=0, scale=0, digits=0, filterable=True,
                 sortable=True, name_field=False, case_sensitive=False, child_relationship=None,
                 cascade_delete=False):
        self.name = name
        self.type = type
        self.label = label or _label(name)
        self.length = length
        self.nillable = nillable
        self.createable = createable
        self.updateable = updateable
        self.custom = custom
        self.external_id = external_id
        self.calculated = calculated
        self.default = default
        self.picklist = list(picklist or [])
        self.restricted = restricted
        self.reference_to = list(reference_to)
        self.relationship_name = relationship_name
        self.unique = unique
        self.id_lookup = id_lookup or external_id or type == "id"
        self.defaulted_on_create = defaulted_on_create or default is not None
        self.precision = precision
        self.scale = scale
        self.digits = digits
        self.filterable = filterable
        self.sortable = sortable
        self.name_field = name_field
        self.case_sensitive = case_sensitive
        self.child_relationship = child_relationship
        self.cascade_delete = cascade_delete

    @property
    def required(self) -> bool:
        return (self.createable and not self.nillable and not self.defaulted_on_create
                and self.type != "boolean")

    @property
    def is_text(self) -> bool:
        return self.type in STRING_TYPES

    def describe(self) -> dict:
        text = self.is_text or self.type in ("id", "reference")
        return {
            "aggregatable": self.type not in ("textarea",) or self.length <= 255,
            "autoNumber": False,
            "byteLength": self.length * 3 if text else 0,
            "calculated": self.calculated,
            "calculatedFormula": None,
            "cascadeDelete": False,
            "caseSensitive": self.case_sensitive,
            "compoundFieldName": None,
            "controllerName": None,
            "createable": self.createable,
            "custom": self.custom,
            "defaultValue": self.default,
            "defaultValueFormula": None,
            "defaultedOnCreate": self.defaulted_on_create,
            "dependentPicklist": False,
            "deprecatedAndHidden": False,
            "digits": self.digits,
            "externalId": self.external_id,
            "filterable": self.filterable,
            "groupable": self.filterable and self.type not in NUMBER_TYPES - {"int"},
            "htmlFormatted": False,
            "idLookup": self.id_lookup,
            "inlineHelpText": None,
            "label": self.label,
            "length": self.length if text else 0,
            "name": self.name,
            "nameField": self.name_field,
            "namePointing": len(self.reference_to) > 1,
            "nillable": self.nillable,
            "permissionable": self.nillable and (self.createable or self.updateable),
            "picklistValues": [
                {"active": True, "defaultValue": v == self.default, "label": v,
                 "validFor": None, "value": v}
                for v in self.picklist
            ],
            "polymorphicForeignKey": len(self.reference_to) > 1,
            "precision": self.precision,
            "referenceTargetField": None,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "relationshipOrder": None,
            "restrictedDelete": False,
            "restrictedPicklist": self.restricted,
            "scale": self.scale,
            "soapType": SOAP_TYPES.get(self.type, "xsd:string"),
            "sortable": self.sortable,
            "type": self.type,
            "unique": self.unique,
            "updateable": self.updateable,
            "writeRequiresMasterRead": False,
        }


class SObjectType:
    def __init__(self, name, label, label_plural, fields, createable=True, updateable=True,
                 deletable=True, replicateable=True, mergeable=False, has_owner=True,
                 has_is_deleted=True):
        self.name = name
        self.label = label
        self.label_plural = label_plural
        self.key_prefix = KEY_PREFIXES[name]
        self.createable = createable
        self.updateable = updateable
        self.deletable = deletable
        self.replicateable = replicateable
        self.mergeable = mergeable
        self.has_owner = has_owner
        self.has_is_deleted = has_is_deleted
        self.fields = {}
        self._lower = {}
        for f in fields:
            self.add_field(f)

    def add_field(self, f: Field):
        self.fields[f.name] = f
        self._lower[f.name.lower()] = f

    def field(self, name):
        return self._lower.get(name.lower()) if isinstance(name, str) else None

    def urls(self, version: str) -> dict:
        base = f"/services/data/v{version}/sobjects/{self.name}"
        return {"compactLayouts": base + "/describe/compactLayouts", "rowTemplate": base + "/{ID}",
                "approvalLayouts": base + "/describe/approvalLayouts", "describe": base + "/describe",
                "quickActions": base + "/quickActions", "layouts": base + "/describe/layouts",
                "sobject": base}

    def global_entry(self, version: str) -> dict:
        return {
            "activateable": False, "associateEntityType": None, "associateParentEntity": None,
            "createable": self.createable, "custom": False, "customSetting": False,
            "deepCloneable": False, "deletable": self.deletable, "deprecatedAndHidden": False,
            "feedEnabled": False, "hasSubtypes": False, "isInterface": False, "isSubtype": False,
            "keyPrefix": self.key_prefix, "label": self.label, "labelPlural": self.label_plural,
            "layoutable": True, "mergeable": self.mergeable, "mruEnabled": True, "name": self.name,
            "queryable": True, "replicateable": self.replicateable, "retrieveable": True,
            "searchable": True, "triggerable": True, "undeletable": self.deletable,
            "updateable": self.updateable, "urls": self.urls(version),
        }

    def describe(self, version: str, child_relationships: list) -> dict:
        out = self.global_entry(version)
        out.update({
            "actionOverrides": [],
            "childRelationships": child_relationships,
            "compactLayoutable": True,
            "defaultImplementation": None,
            "extendedBy": None,
            "extendsInterfaces": None,
            "fields": [f.describe() for f in self.fields.values()],
            "implementedBy": None,
            "implementsInterfaces": None,
            "listviewable": None,
            "lookupLayoutable": None,
            "namedLayoutInfos": [],
            "networkScopeFieldName": None,
            "recordTypeInfos": [{
                "active": True, "available": True, "defaultRecordTypeMapping": True,
                "developerName": "Master", "master": True, "name": "Master",
                "recordTypeId": "012000000000000AAA",
                "urls": {"layout": f"/services/data/v{version}/sobjects/{self.name}/describe/layouts/012000000000000AAA"},
            }],
            "searchLayoutable": True,
            "sobjectDescribeOption": "FULL",
            "supportedScopes": [{"label": "All " + self.label_plural.lower(), "name": "everything"}],
        })
        return out


# Field constructors for the standard objects.
def _s(name, length, **kw):
    return Field(name, "string", length=length, **kw)


def _ta(name, length=255, **kw):
    # Long text areas can be neither filtered nor sorted in SOQL.
    long_text = length > 255
    return Field(name, "textarea", length=length, filterable=not long_text, sortable=not long_text, **kw)


def _pick(name, values, default=None, restricted=False, **kw):
    return Field(name, "picklist", length=255, picklist=values, default=default,
                 restricted=restricted, **kw)


def _ref(name, to, rel, **kw):
    return Field(name, "reference", length=18, reference_to=to, relationship_name=rel, **kw)


def _bool(name, default=False, **kw):
    return Field(name, "boolean", default=default, nillable=False, **kw)


def _system(type_name, has_owner=True, has_is_deleted=True, owner_to=("User",), mergeable=False,
            label=None):
    out = [Field("Id", "id", label=(label or type_name) + " ID", length=18, nillable=False,
                 createable=False, updateable=False, defaulted_on_create=True)]
    if has_owner:
        out.append(_ref("OwnerId", owner_to, "Owner", nillable=False, defaulted_on_create=True))
    if has_is_deleted:
        out.append(_bool("IsDeleted", label="Deleted", createable=False, updateable=False))
    if mergeable:
        out.append(_ref("MasterRecordId", [type_name], "MasterRecord", label="Master Record ID",
                        createable=False, updateable=False))
    for name, label in (("CreatedDate", "Created Date"), ("CreatedById", "Created By ID"),
                        ("LastModifiedDate", "Last Modified Date"),
                        ("LastModifiedById", "Last Modified By ID"),
                        ("SystemModstamp", "System Modstamp")):
        if name.endswith("ById"):
            out.append(_ref(name, ["User"], name[:-2], label=label, nillable=False,
                            createable=False, updateable=False, defaulted_on_create=True))
        else:
            out.append(Field(name, "datetime", label=label, nillable=False, createable=False,
                             updateable=False, defaulted_on_create=True))
    return out


def _address(prefix):
    return [_ta(prefix + "Street"), _s(prefix + "City", 40), _s(prefix + "State", 80),
            _s(prefix + "PostalCode", 20), _s(prefix + "Country", 80)]


def _derived_name():
    return Field("Name", "string", label="Full Name", length=121, createable=False,
                 updateable=False, name_field=True)


def build_schema() -> dict:
    types = [
        SObjectType("Organization", "Organization", "Organizations", _system(
            "Organization", has_owner=False, has_is_deleted=False) + [
            _s("Name", 80, nillable=False, name_field=True, createable=False, updateable=False),
            _pick("OrganizationType", ["Enterprise Edition", "Developer Edition"], createable=False, updateable=False),
            _s("InstanceName", 5, createable=False, updateable=False),
            _bool("IsSandbox", createable=False, updateable=False),
        ], createable=False, updateable=False, deletable=False, replicateable=False,
            has_owner=False, has_is_deleted=False),
        SObjectType("User", "User", "Users", _system("User", has_owner=False, has_is_deleted=False) + [
            _s("Username", 80, nillable=False, unique=True, id_lookup=True, createable=False),
            _s("FirstName", 40),
            _s("LastName", 80, nillable=False),
            _derived_name(),
            Field("Email", "email", length=128, nillable=False, id_lookup=True),
            _bool("IsActive", label="Active"),
            _pick("UserType", ["Standard", "PowerPartner", "CspLitePortal", "CsnOnly", "Guest"],
                  createable=False, updateable=False),
        ], createable=False, deletable=False, has_owner=False, has_is_deleted=False),
        SObjectType("Group", "Group", "Groups", _system("Group", has_owner=False, has_is_deleted=False) + [
            _s("Name", 40, name_field=True, createable=False, updateable=False),
            _s("DeveloperName", 80, createable=False, updateable=False),
            _pick("Type", ["Regular", "Role", "Queue", "Organization"], createable=False, updateable=False),
            Field("Email", "email", length=255, createable=False, updateable=False),
        ], createable=False, updateable=False, deletable=False, has_owner=False, has_is_deleted=False),
        SObjectType("Lead", "Lead", "Leads", _system("Lead", owner_to=("Group", "User"), mergeable=True) + [
            _s("FirstName", 40),
            _s("LastName", 80, nillable=False),
            _derived_name(),
            _s("Company", 255, nillable=False),
            Field("Email", "email", length=80, id_lookup=True),
            Field("Phone", "phone", length=40),
            Field("MobilePhone", "phone", length=40),
            _s("Title", 128),
            _pick("Status", LEAD_STATUSES, default=LEAD_STATUSES[0], restricted=True, nillable=False),
            _pick("LeadSource", LEAD_SOURCES),
            _pick("Industry", INDUSTRIES),
            Field("Website", "url", length=255),
            *_address(""),
            _ta("Description", 32000),
            _bool("IsConverted", label="Converted", updateable=False),
            _ref("ConvertedContactId", ["Contact"], "ConvertedContact", createable=False, updateable=False),
            _ref("ConvertedAccountId", ["Account"], "ConvertedAccount", createable=False, updateable=False),
            _ref("ConvertedOpportunityId", ["Opportunity"], "ConvertedOpportunity", createable=False, updateable=False),
            Field("ConvertedDate", "date", createable=False, updateable=False),
        ], mergeable=True),
        SObjectType("Account", "Account", "Accounts", _system("Account", mergeable=True) + [
            _s("Name", 255, nillable=False, name_field=True, label="Account Name"),
            Field("Website", "url", length=255),
            Field("Phone", "phone", length=40),
            _pick("Industry", INDUSTRIES),
            _pick("Type", ACCOUNT_TYPES, label="Account Type"),
            Field("NumberOfEmployees", "int", label="Employees", digits=8),
            Field("AnnualRevenue", "currency", precision=18, scale=0),
            *_address("Billing"),
            _ta("Description", 32000),
        ], mergeable=True),
        SObjectType("Contact", "Contact", "Contacts", _system("Contact", mergeable=True) + [
            _s("FirstName", 40),
            _s("LastName", 80, nillable=False),
            _derived_name(),
            Field("Email", "email", length=80, id_lookup=True),
            Field("Phone", "phone", length=40),
            Field("MobilePhone", "phone", length=40),
            _s("Title", 128),
            _s("Department", 80),
            _ref("AccountId", ["Account"], "Account", child_relationship="Contacts", cascade_delete=True),
            *_address("Mailing"),
            _pick("LeadSource", LEAD_SOURCES),
            _ta("Description", 32000),
        ], mergeable=True),
        SObjectType("Opportunity", "Opportunity", "Opportunities", _system("Opportunity") + [
            _s("Name", 120, nillable=False, name_field=True),
            _pick("StageName", [s[0] for s in OPPORTUNITY_STAGES], restricted=True, nillable=False, label="Stage"),
            Field("Amount", "currency", precision=18, scale=2),
            Field("CloseDate", "date", nillable=False),
            _ref("AccountId", ["Account"], "Account", child_relationship="Opportunities", cascade_delete=True),
            Field("Probability", "percent", label="Probability (%)", precision=3, scale=0),
            _bool("IsClosed", label="Closed", createable=False, updateable=False),
            _bool("IsWon", label="Won", createable=False, updateable=False),
            _pick("Type", OPPORTUNITY_TYPES, label="Opportunity Type"),
            _pick("LeadSource", LEAD_SOURCES),
            _ta("Description", 32000),
        ]),
        SObjectType("Task", "Task", "Tasks", _system("Task") + [
            Field("Subject", "combobox", length=255),
            Field("ActivityDate", "date", label="Due Date Only"),
            _pick("Status", TASK_STATUSES, default="Not Started", restricted=True, nillable=False),
            _pick("Priority", ["High", "Normal", "Low"], default="Normal", restricted=True, nillable=False),
            _ta("Description", 32000),
            _ref("WhoId", ["Contact", "Lead"], "Who", label="Name ID", child_relationship="Tasks",
                 cascade_delete=True),
            _ref("WhatId", ["Account", "Opportunity"], "What", label="Related To ID",
                 child_relationship="Tasks", cascade_delete=True),
            _bool("IsClosed", label="Closed", createable=False, updateable=False),
        ]),
    ]
    return {t.name: t for t in types}


def child_relationships(schema: dict, parent: str) -> list:
    out = []
    for t in schema.values():
        for f in t.fields.values():
            if f.type == "reference" and parent in f.reference_to:
                out.append({
                    "cascadeDelete": f.cascade_delete, "childSObject": t.name,
                    "deprecatedAndHidden": False, "field": f.name, "junctionIdListNames": [],
                    "junctionReferenceTo": [], "relationshipName": f.child_relationship,
                    "restrictedDelete": False,
                })
    return out


def custom_field(spec: dict, schema: dict) -> Field:
    """A Field from the control API's description of a custom field (raises ValueError)."""
    name = spec.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*__c", name) or "___" in name:
        raise ValueError("custom field names look like Foo__c")
    ftype = spec.get("type", "string")
    if ftype not in CUSTOM_FIELD_TYPES:
        raise ValueError(f"type must be one of {sorted(CUSTOM_FIELD_TYPES)}")
    kw = {"label": spec.get("label"), "custom": True,
          "external_id": bool(spec.get("externalId", False)),
          "unique": bool(spec.get("unique", False)),
          "case_sensitive": bool(spec.get("caseSensitive", False)),
          "nillable": not spec.get("required", False)}
    if ftype == "boolean":
        return Field(name, ftype, default=bool(spec.get("defaultValue", False)), label=kw["label"],
                     custom=True, nillable=False)
    if ftype in ("string", "email", "phone", "url", "picklist", "multipicklist"):
        kw["length"] = int(spec.get("length", 255))
    elif ftype == "textarea":
        kw["length"] = int(spec.get("length", 255))
        kw["filterable"] = kw["sortable"] = kw["length"] <= 255
    elif ftype in ("double", "currency", "percent"):
        kw["precision"] = int(spec.get("precision", 18))
        kw["scale"] = int(spec.get("scale", 2))
    elif ftype == "int":
        kw["digits"] = int(spec.get("digits", 9))
    elif ftype == "reference":
        to = spec.get("referenceTo") or []
        if not to or any(t not in schema for t in to):
            raise ValueError("referenceTo must name existing objects")
        kw["reference_to"] = to
        kw["relationship_name"] = name[:-3] + "__r"
        kw["length"] = 18
    if ftype in ("picklist", "multipicklist"):
        values = spec.get("picklistValues") or []
        if not values or not all(isinstance(v, str) for v in values):
            raise ValueError("picklistValues must be a non-empty list of strings")
        kw["picklist"] = values
        kw["restricted"] = bool(spec.get("restricted", False))
        kw["default"] = spec.get("defaultValue")
    if kw["external_id"] and ftype not in ("string", "email", "int", "double"):
        raise ValueError("only string, email and number fields can be external ids")
    return Field(name, ftype, **kw)
