"""`crm.properties`: core CRUD, batch read/create/archive, and property groups."""

import pytest
from hubspot.crm.objects import SimplePublicObjectInput
from hubspot.crm.objects.exceptions import ApiException as ObjectsApiException
from hubspot.crm.properties import (
    BatchInputPropertyCreate,
    BatchInputPropertyName,
    BatchReadInputPropertyName,
    OptionInput,
    PropertyCreate,
    PropertyGroupCreate,
    PropertyGroupUpdate,
    PropertyName,
    PropertyUpdate,
)
from hubspot.crm.properties.exceptions import ApiException, NotFoundException

from helpers import create, error_body, unique


def text_property(name, group="contactinformation", **extra):
    return PropertyCreate(
        name=name,
        label=name.replace("_", " ").title(),
        type="string",
        field_type="text",
        group_name=group,
        **extra,
    )


def test_get_all_lists_builtin_properties(client):
    res = client.crm.properties.core_api.get_all("contacts")
    by_name = {p.name: p for p in res.results}
    for name in ("email", "firstname", "lastname", "createdate", "lastmodifieddate", "hs_object_id"):
        assert name in by_name
    email = by_name["email"]
    assert email.type == "string"
    assert email.group_name == "contactinformation"
    assert email.hubspot_defined is True
    assert email.has_unique_value is True
    stage = by_name["lifecyclestage"]
    assert stage.type == "enumeration"
    assert "customer" in {o.value for o in stage.options}


def test_get_by_name(client):
    p = client.crm.properties.core_api.get_by_name("deals", "amount")
    assert p.name == "amount"
    assert p.type == "number"
    assert p.group_name == "dealinformation"
    with pytest.raises(NotFoundException):
        client.crm.properties.core_api.get_by_name("deals", "no_such_property")


def test_create_answers_201_and_the_property_is_usable(client):
    name = unique("favourite_colour_")
    created, status, _ = client.crm.properties.core_api.create_with_http_info(
        "contacts", text_property(name, description="What they like")
    )
    assert status == 201
    assert created.name == name
    assert created.type == "string"
    assert created.field_type == "text"
    assert created.group_name == "contactinformation"
    assert created.description == "What they like"
    assert created.options == []
    assert created.hubspot_defined in (False, None)
    assert created.archived is False
    fetched = client.crm.properties.core_api.get_by_name("contacts", name)
    assert fetched.label == created.label
    record = create(client, "contacts", {"email": f"{unique()}@example.com", name: "teal"})
    assert record.properties[name] == "teal"


def test_create_enumeration_property_validates_options(client):
    name = unique("tier_")
    created = client.crm.properties.core_api.create(
        "companies",
        PropertyCreate(
            name=name,
            label="Tier",
            type="enumeration",
            field_type="select",
            group_name="companyinformation",
            options=[
                OptionInput(label="Gold", value="gold", hidden=False, display_order=0),
                OptionInput(label="Silver", value="silver", hidden=False, display_order=1),
            ],
        ),
    )
    assert [(o.label, o.value) for o in created.options] == [("Gold", "gold"), ("Silver", "silver")]
    ok = create(client, "companies", {"name": "Acme", name: "gold"})
    assert ok.properties[name] == "gold"
    with pytest.raises(ObjectsApiException) as e:
        create(client, "companies", {"name": "Acme", name: "bronze"})
    assert e.value.status == 400


def test_create_multi_checkbox_property(client):
    name = unique("channels_")
    client.crm.properties.core_api.create(
        "contacts",
        PropertyCreate(
            name=name,
            label="Channels",
            type="enumeration",
            field_type="checkbox",
            group_name="contactinformation",
            options=[
                OptionInput(label="Email", value="email", hidden=False),
                OptionInput(label="Phone", value="phone", hidden=False),
                OptionInput(label="Post", value="post", hidden=False),
            ],
        ),
    )
    rec = create(client, "contacts", {"email": f"{unique()}@example.com", name: "email;post"})
    assert rec.properties[name] == "email;post"


def test_create_number_and_date_properties(client):
    num, day = unique("score_"), unique("renewal_")
    client.crm.properties.core_api.create(
        "deals",
        PropertyCreate(name=num, label="Score", type="number", field_type="number", group_name="dealinformation"),
    )
    client.crm.properties.core_api.create(
        "deals",
        PropertyCreate(name=day, label="Renewal", type="date", field_type="date", group_name="dealinformation"),
    )
    rec = create(
        client,
        "deals",
        {"dealname": "D", "pipeline": "default", "dealstage": "closedwon", num: "42.5", day: "2025-01-31"},
    )
    got = client.crm.objects.basic_api.get_by_id("deals", rec.id, properties=[num, day])
    assert got.properties[num] == "42.5"
    assert got.properties[day] == "2025-01-31"


def test_unique_property_rejects_duplicates_and_works_as_id_property(client):
    name = unique("member_no_")
    client.crm.properties.core_api.create(
        "contacts", text_property(name, has_unique_value=True)
    )
    p = client.crm.properties.core_api.get_by_name("contacts", name)
    assert p.has_unique_value is True
    first = create(client, "contacts", {"email": f"{unique()}@example.com", name: "M-001"})
    with pytest.raises(ObjectsApiException) as e:
        create(client, "contacts", {"email": f"{unique()}@example.com", name: "M-001"})
    assert e.value.status == 400
    assert error_body(e.value)["category"] == "VALIDATION_ERROR"
    got = client.crm.objects.basic_api.get_by_id("contacts", "M-001", id_property=name)
    assert got.id == first.id


def test_update_answers_200_with_new_definition(client):
    name = unique("nickname_")
    client.crm.properties.core_api.create("contacts", text_property(name))
    updated, status, _ = client.crm.properties.core_api.update_with_http_info(
        "contacts", name, PropertyUpdate(label="Nick name", description="Informal name")
    )
    assert status == 200
    assert updated.label == "Nick name"
    assert updated.description == "Informal name"
    assert updated.type == "string"
    fetched = client.crm.properties.core_api.get_by_name("contacts", name)
    assert fetched.label == "Nick name"


def test_update_adds_options(client):
    name = unique("size_")
    client.crm.properties.core_api.create(
        "companies",
        PropertyCreate(
            name=name,
            label="Size",
            type="enumeration",
            field_type="select",
            group_name="companyinformation",
            options=[OptionInput(label="S", value="s", hidden=False)],
        ),
    )
    client.crm.properties.core_api.update(
        "companies",
        name,
        PropertyUpdate(
            options=[
                OptionInput(label="S", value="s", hidden=False),
                OptionInput(label="L", value="l", hidden=False),
            ]
        ),
    )
    rec = create(client, "companies", {"name": "Big Co", name: "l"})
    assert rec.properties[name] == "l"


def test_archive_answers_204(client):
    name = unique("temp_")
    client.crm.properties.core_api.create("contacts", text_property(name))
    _, status, _ = client.crm.properties.core_api.archive_with_http_info("contacts", name)
    assert status == 204
    with pytest.raises(NotFoundException):
        client.crm.properties.core_api.get_by_name("contacts", name)
    live = {p.name for p in client.crm.properties.core_api.get_all("contacts").results}
    assert name not in live
    archived = client.crm.properties.core_api.get_all("contacts", archived=True).results
    [p] = [p for p in archived if p.name == name]
    assert p.archived is True
    assert p.archived_at is not None
    with pytest.raises(ObjectsApiException) as e:
        create(client, "contacts", {"email": f"{unique()}@example.com", name: "x"})
    assert e.value.status == 400


def test_hubspot_defined_property_cannot_be_archived(client):
    with pytest.raises(ApiException) as e:
        client.crm.properties.core_api.archive("contacts", "email")
    assert 400 <= e.value.status < 500
    assert client.crm.properties.core_api.get_by_name("contacts", "email").name == "email"


def test_invalid_definitions_are_400(client):
    bad = [
        PropertyCreate(name="Bad Name", label="x", type="string", field_type="text", group_name="contactinformation"),
        PropertyCreate(name=unique("p_"), label="x", type="number", field_type="text", group_name="contactinformation"),
    ]
    for definition in bad:
        with pytest.raises(ApiException) as e:
            client.crm.properties.core_api.create("contacts", definition)
        assert e.value.status == 400
        assert error_body(e.value)["category"] == "VALIDATION_ERROR"


def test_create_in_unknown_group_is_400(client):
    with pytest.raises(ApiException) as e:
        client.crm.properties.core_api.create(
            "contacts", text_property(unique("p_"), group=unique("nogroup_"))
        )
    assert e.value.status == 400
    assert error_body(e.value)["category"] == "VALIDATION_ERROR"


def test_batch_read(client):
    res, status, _ = client.crm.properties.batch_api.read_with_http_info(
        "contacts",
        BatchReadInputPropertyName(
            archived=False, inputs=[PropertyName(name="email"), PropertyName(name="city")]
        ),
    )
    assert status == 200
    assert sorted(p.name for p in res.results) == ["city", "email"]


def test_batch_read_with_a_missing_name_is_207(client):
    res, status, _ = client.crm.properties.batch_api.read_with_http_info(
        "contacts",
        BatchReadInputPropertyName(
            archived=False,
            inputs=[PropertyName(name="email"), PropertyName(name="no_such_property")],
        ),
    )
    assert status == 207
    assert [p.name for p in res.results] == ["email"]
    assert res.errors[0].context["ids"] == ["no_such_property"]


def test_batch_create_answers_201(client):
    a, b = unique("alpha_"), unique("beta_")
    res, status, _ = client.crm.properties.batch_api.create_with_http_info(
        "companies",
        BatchInputPropertyCreate(
            inputs=[
                text_property(a, group="companyinformation"),
                PropertyCreate(
                    name=b, label="Beta", type="number", field_type="number", group_name="companyinformation"
                ),
            ]
        ),
    )
    assert status == 201
    assert res.status == "COMPLETE"
    assert sorted(p.name for p in res.results) == sorted([a, b])
    names = {p.name for p in client.crm.properties.core_api.get_all("companies").results}
    assert {a, b} <= names


def test_batch_archive_answers_204(client):
    a, b = unique("gamma_"), unique("delta_")
    client.crm.properties.batch_api.create(
        "contacts", BatchInputPropertyCreate(inputs=[text_property(a), text_property(b)])
    )
    _, status, _ = client.crm.properties.batch_api.archive_with_http_info(
        "contacts", BatchInputPropertyName(inputs=[PropertyName(name=a), PropertyName(name=b)])
    )
    assert status == 204
    names = {p.name for p in client.crm.properties.core_api.get_all("contacts").results}
    assert a not in names and b not in names


def test_properties_of_other_object_types(client):
    for object_type, expected in (
        ("companies", "domain"),
        ("deals", "dealstage"),
        ("tickets", "hs_pipeline_stage"),
        ("products", "price"),
        ("calls", "hs_call_title"),
        ("conversations", "hs_conversation_subject"),
        ("tasks", "hs_task_status"),
        ("notes", "hs_note_body"),
        ("meetings", "hs_meeting_title"),
        ("emails", "hs_email_subject"),
    ):
        names = {p.name for p in client.crm.properties.core_api.get_all(object_type).results}
        assert expected in names, object_type
        assert "hs_object_id" in names, object_type


# Property groups


def test_groups_get_all_lists_builtin_group(client):
    res = client.crm.properties.groups_api.get_all("contacts")
    assert "contactinformation" in {g.name for g in res.results}


def test_group_crud(client):
    name = unique("billing_")
    created, status, _ = client.crm.properties.groups_api.create_with_http_info(
        "companies", PropertyGroupCreate(name=name, label="Billing", display_order=3)
    )
    assert status == 201
    assert (created.name, created.label, created.display_order, created.archived) == (
        name,
        "Billing",
        3,
        False,
    )
    got = client.crm.properties.groups_api.get_by_name("companies", name)
    assert got.label == "Billing"

    updated, status, _ = client.crm.properties.groups_api.update_with_http_info(
        "companies", name, PropertyGroupUpdate(label="Billing details", display_order=5)
    )
    assert status == 200
    assert (updated.label, updated.display_order) == ("Billing details", 5)
    assert client.crm.properties.groups_api.get_by_name("companies", name).label == "Billing details"

    prop = unique("vat_")
    client.crm.properties.core_api.create("companies", text_property(prop, group=name))
    assert client.crm.properties.core_api.get_by_name("companies", prop).group_name == name
    # A group that still holds properties cannot go; move the property out first.
    client.crm.properties.core_api.update(
        "companies", prop, PropertyUpdate(group_name="companyinformation")
    )
    assert client.crm.properties.core_api.get_by_name("companies", prop).group_name == "companyinformation"

    _, status, _ = client.crm.properties.groups_api.archive_with_http_info("companies", name)
    assert status == 204
    with pytest.raises(NotFoundException):
        client.crm.properties.groups_api.get_by_name("companies", name)
    assert name not in {g.name for g in client.crm.properties.groups_api.get_all("companies").results}


def test_group_unknown_is_404(client):
    with pytest.raises(NotFoundException):
        client.crm.properties.groups_api.get_by_name("contacts", unique("missing_"))


def test_record_write_after_property_update_keeps_value(client):
    name = unique("ref_")
    client.crm.properties.core_api.create("contacts", text_property(name))
    rec = create(client, "contacts", {"email": f"{unique()}@example.com", name: "v1"})
    client.crm.properties.core_api.update("contacts", name, PropertyUpdate(label="Reference"))
    client.crm.objects.basic_api.update(
        "contacts", rec.id, SimplePublicObjectInput(properties={name: "v2"})
    )
    got = client.crm.objects.basic_api.get_by_id("contacts", rec.id, properties=[name])
    assert got.properties[name] == "v2"
