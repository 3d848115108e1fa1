"""The same record lifecycle on every object type, through the package a user would pick:
`crm.contacts`, `crm.companies`, … where the client has one, `crm.objects.calls`, … for
engagements, and the generic `crm.objects` API for conversations and custom objects."""

import importlib
from functools import partial

import dateutil.parser
import pytest

from helpers import create_custom_object, expect_status, unique

TS = "2024-05-01T12:00:00.000Z"

SYSTEM_ENGAGEMENT = {"hs_createdate", "hs_lastmodifieddate", "hs_object_id"}

# name: (client attribute path, create props, update props, non-default prop, default property names)
TYPES = {
    "contacts": (
        "crm.contacts",
        lambda: {"email": f"{unique()}@example.com", "firstname": "Ada", "lastname": "Lovelace"},
        {"firstname": "Augusta"},
        ("city", "London"),
        {"firstname", "lastname", "email", "lastmodifieddate", "hs_object_id", "createdate"},
    ),
    "companies": (
        "crm.companies",
        lambda: {"name": "Analytical Engines", "domain": f"{unique()}.com"},
        {"name": "Difference Engines"},
        ("city", "London"),
        {"name", "domain", "createdate", "hs_lastmodifieddate", "hs_object_id"},
    ),
    "deals": (
        "crm.deals",
        lambda: {"dealname": "Big deal", "amount": "1500", "pipeline": "default", "dealstage": "appointmentscheduled"},
        {"dealstage": "closedwon"},
        ("dealtype", "newbusiness"),
        {"dealname", "amount", "closedate", "pipeline", "dealstage", "createdate", "hs_lastmodifieddate", "hs_object_id"},
    ),
    "tickets": (
        "crm.tickets",
        lambda: {"subject": "Printer on fire", "hs_pipeline": "0", "hs_pipeline_stage": "1", "hs_ticket_priority": "HIGH"},
        {"hs_pipeline_stage": "4"},
        None,
        {
            "content",
            "hs_pipeline",
            "hs_pipeline_stage",
            "hs_ticket_category",
            "hs_ticket_priority",
            "subject",
            "createdate",
            "hs_lastmodifieddate",
            "hs_object_id",
        },
    ),
    "products": (
        "crm.products",
        lambda: {"name": "Widget", "price": "9.99", "description": "A widget"},
        {"price": "10.5"},
        ("hs_sku", "W-1"),
        {"name", "description", "price", "createdate", "hs_lastmodifieddate", "hs_object_id"},
    ),
    "calls": (
        "crm.objects.calls",
        lambda: {"hs_timestamp": TS, "hs_call_title": "Intro call", "hs_call_direction": "OUTBOUND"},
        {"hs_call_status": "COMPLETED"},
        ("hs_call_title", None),
        SYSTEM_ENGAGEMENT,
    ),
    "conversations": (
        None,
        lambda: {"hs_timestamp": TS, "hs_conversation_subject": "Where is my order?", "hs_conversation_channel": "CHAT"},
        {"hs_conversation_status": "CLOSED"},
        ("hs_conversation_subject", None),
        SYSTEM_ENGAGEMENT,
    ),
    "tasks": (
        "crm.objects.tasks",
        lambda: {"hs_timestamp": TS, "hs_task_subject": "Send quote", "hs_task_status": "NOT_STARTED"},
        {"hs_task_status": "COMPLETED"},
        ("hs_task_subject", None),
        SYSTEM_ENGAGEMENT,
    ),
    "notes": (
        "crm.objects.notes",
        lambda: {"hs_timestamp": TS, "hs_note_body": "Likes tea"},
        {"hs_note_body": "Likes coffee"},
        ("hs_note_body", None),
        SYSTEM_ENGAGEMENT,
    ),
    "meetings": (
        "crm.objects.meetings",
        lambda: {"hs_timestamp": TS, "hs_meeting_title": "Kick-off", "hs_meeting_location": "Room 1"},
        {"hs_meeting_location": "Room 2"},
        ("hs_meeting_title", None),
        SYSTEM_ENGAGEMENT,
    ),
    "emails": (
        "crm.objects.emails",
        lambda: {"hs_timestamp": TS, "hs_email_subject": "Hello", "hs_email_direction": "EMAIL"},
        {"hs_email_subject": "Hello again"},
        ("hs_email_subject", None),
        SYSTEM_ENGAGEMENT,
    ),
    "custom": (
        None,
        lambda: {"model": "Beetle", "year": "1968", "vin": unique("VIN")},
        {"year": "1969"},
        ("model", None),
        SYSTEM_ENGAGEMENT,
    ),
}

MODEL_PACKAGE = {
    "crm.contacts": "hubspot.crm.contacts",
    "crm.companies": "hubspot.crm.companies",
    "crm.deals": "hubspot.crm.deals",
    "crm.tickets": "hubspot.crm.tickets",
    "crm.products": "hubspot.crm.products",
    "crm.objects.calls": "hubspot.crm.objects.calls",
    "crm.objects.tasks": "hubspot.crm.objects.tasks",
    "crm.objects.notes": "hubspot.crm.objects.notes",
    "crm.objects.meetings": "hubspot.crm.objects.meetings",
    "crm.objects.emails": "hubspot.crm.objects.emails",
    None: "hubspot.crm.objects",
}


class Api:
    """One object type through the client package a user would use for it."""

    def __init__(self, client, attr, object_type):
        self.models = importlib.import_module(MODEL_PACKAGE[attr])
        self.object_type = object_type
        if attr is None:
            root = client.crm.objects
            bind = lambda f: partial(f, object_type)  # noqa: E731
        else:
            root = client
            for part in attr.split("."):
                root = getattr(root, part)
            bind = lambda f: f  # noqa: E731
        self.basic = root.basic_api
        self.create_with_info = bind(root.basic_api.create_with_http_info)
        self.get = bind(root.basic_api.get_by_id)
        self.update = bind(root.basic_api.update)
        self.archive_with_info = bind(root.basic_api.archive_with_http_info)
        self.get_page = bind(root.basic_api.get_page)
        self.search = bind(root.search_api.do_search)

    def create(self, props):
        record, status, _ = self.create_with_info(
            self.models.SimplePublicObjectInputForCreate(properties=props, associations=[])
        )
        assert status == 201
        return record


@pytest.fixture(params=list(TYPES))
def kind(request, client):
    name = request.param
    attr, make, update, extra, defaults = TYPES[name]
    object_type = name
    if name == "custom":
        object_type = create_custom_object(client).object_type_id
    return {
        "name": name,
        "api": Api(client, attr, object_type),
        "make": make,
        "update": update,
        "extra": extra,
        "defaults": defaults,
    }


def test_create_get_update_archive(kind):
    api = kind["api"]
    props = kind["make"]()
    record = api.create(props)
    assert record.id.isdigit()
    for k, v in props.items():
        if k != "hs_timestamp":
            assert record.properties[k] == v
    assert record.properties["hs_object_id"] == record.id

    got = api.get(record.id, properties=list(props))
    assert got.id == record.id
    for k, v in props.items():
        if k == "hs_timestamp":
            assert dateutil.parser.isoparse(got.properties[k]) == dateutil.parser.isoparse(v)
        else:
            assert got.properties[k] == v

    updated = api.update(record.id, api.models.SimplePublicObjectInput(properties=kind["update"]))
    assert updated is not None
    for k, v in kind["update"].items():
        assert updated.properties[k] == v
    got = api.get(record.id, properties=list(kind["update"]))
    for k, v in kind["update"].items():
        assert got.properties[k] == v

    page = api.get_page(limit=100)
    assert [r.id for r in page.results] == [record.id]

    _, status, _ = api.archive_with_info(record.id)
    assert status == 204
    expect_status(404, lambda: api.get(record.id))
    assert api.get_page().results == []
    assert api.get(record.id, archived=True).archived is True


def test_default_properties(kind):
    api = kind["api"]
    props = kind["make"]()
    extra = kind["extra"]
    if extra and extra[1] is not None:
        props[extra[0]] = extra[1]
    record = api.create(props)
    got = api.get(record.id)
    defaults = kind["defaults"]
    assert set(got.properties) <= defaults, set(got.properties) - defaults
    assert got.properties["hs_object_id"] == record.id
    for k, v in props.items():
        if k in defaults:
            assert got.properties[k] == v
    if extra:
        assert extra[0] not in got.properties


def test_timestamps_match_create_and_modified_properties(kind):
    api = kind["api"]
    record = api.create(kind["make"]())
    defaults = kind["defaults"]
    created_prop = "hs_createdate" if "hs_createdate" in defaults else "createdate"
    modified_prop = "lastmodifieddate" if "lastmodifieddate" in defaults else "hs_lastmodifieddate"
    updated = api.update(record.id, api.models.SimplePublicObjectInput(properties=kind["update"]))
    got = api.get(record.id, properties=[created_prop, modified_prop])
    assert dateutil.parser.isoparse(got.properties[created_prop]) == got.created_at
    assert dateutil.parser.isoparse(got.properties[modified_prop]) == got.updated_at
    assert got.created_at == record.created_at
    assert got.updated_at == updated.updated_at
    assert got.updated_at >= got.created_at


def test_search(kind):
    api = kind["api"]
    first = api.create(kind["make"]())
    second = api.create(kind["make"]())
    api.update(second.id, api.models.SimplePublicObjectInput(properties=kind["update"]))
    prop, value = next(iter(kind["update"].items()))
    res = api.search(
        api.models.PublicObjectSearchRequest(
            filter_groups=[
                api.models.FilterGroup(
                    filters=[api.models.Filter(property_name=prop, operator="EQ", value=value)]
                )
            ],
            properties=[prop],
        )
    )
    assert res.total == 1
    assert [r.id for r in res.results] == [second.id]
    assert res.results[0].properties[prop] == value
    everything = api.search(api.models.PublicObjectSearchRequest(sorts=["-hs_object_id"]))
    assert [r.id for r in everything.results] == [second.id, first.id]


@pytest.mark.parametrize("name", ["calls", "tasks", "notes", "meetings", "emails"])
def test_engagements_require_hs_timestamp(client, name):
    attr, make, *_ = TYPES[name]
    api = Api(client, attr, name)
    props = {k: v for k, v in make().items() if k != "hs_timestamp"}
    body = expect_status(
        400,
        lambda: api.create_with_info(
            api.models.SimplePublicObjectInputForCreate(properties=props, associations=[])
        ),
    )
    assert body["category"] == "VALIDATION_ERROR"
    assert "hs_timestamp" in body["message"]
    assert api.get_page().results == []


@pytest.mark.parametrize(
    "name,pipeline,default,stage",
    [("deals", "pipeline", "default", "dealstage"), ("tickets", "hs_pipeline", "0", "hs_pipeline_stage")],
)
def test_a_record_without_a_pipeline_goes_to_the_default_one(client, name, pipeline, default, stage):
    attr, make, *_ = TYPES[name]
    api = Api(client, attr, name)
    props = {k: v for k, v in make().items() if k != pipeline}
    made = api.create(props)
    assert made.properties[pipeline] == default
    # The stage is still required, as in HubSpot.
    without_stage = {k: v for k, v in props.items() if k != stage}
    body = expect_status(
        400,
        lambda: api.create_with_info(
            api.models.SimplePublicObjectInputForCreate(properties=without_stage, associations=[])
        ),
    )
    assert stage in body["message"]
