"""`crm.objects.basic_api` (and the contacts package): list, get, create, update, archive."""

import datetime

import pytest
from hubspot.crm.contacts import SimplePublicObjectInputForCreate as ContactCreate
from hubspot.crm.objects import (
    AssociationSpec,
    PublicAssociationsForObject,
    PublicObjectId,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.objects.exceptions import ApiException, NotFoundException

from helpers import batch_create, create, error_body, unique

CONTACT_DEFAULTS = {"firstname", "lastname", "email", "lastmodifieddate", "hs_object_id", "createdate"}


def contact_props(**extra):
    props = {"email": f"{unique('ada')}@example.com", "firstname": "Ada", "lastname": "Lovelace"}
    props.update(extra)
    return props


def to_company(company_id, type_id=279):
    return PublicAssociationsForObject(
        to=PublicObjectId(id=company_id),
        types=[AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=type_id)],
    )


def test_create_answers_201_with_the_record(client):
    props = contact_props(city="London")
    record, status, headers = client.crm.objects.basic_api.create_with_http_info(
        "contacts", SimplePublicObjectInputForCreate(properties=props)
    )
    assert status == 201
    assert "application/json" in headers["Content-Type"]
    assert record.id.isdigit()
    assert record.properties["email"] == props["email"]
    assert record.properties["firstname"] == "Ada"
    assert record.properties["city"] == "London"
    assert record.properties["hs_object_id"] == record.id
    assert record.properties["createdate"]
    assert record.properties["lastmodifieddate"]
    assert isinstance(record.created_at, datetime.datetime)
    assert record.created_at == record.updated_at
    assert record.archived is False


def test_create_accepts_numbers_and_booleans_and_returns_strings(client):
    record = create(client, "contacts", contact_props(num_employees=25, hs_email_optout=True))
    assert record.properties["num_employees"] == "25"
    assert record.properties["hs_email_optout"] == "true"


def test_dates_accept_epoch_milliseconds(client):
    record = create(
        client,
        "contacts",
        contact_props(date_of_birth=1714521600000, notes_last_contacted=1714567200000),
    )
    got = client.crm.objects.basic_api.get_by_id(
        "contacts", record.id, properties=["date_of_birth", "notes_last_contacted"]
    )
    assert got.properties["date_of_birth"] == "2024-05-01"
    assert got.properties["notes_last_contacted"] == "2024-05-01T12:40:00.000Z"


def test_contacts_package_create_and_get(client):
    props = contact_props()
    created = client.crm.contacts.basic_api.create(
        simple_public_object_input_for_create=ContactCreate(properties=props)
    )
    assert created is not None
    fetched = client.crm.contacts.basic_api.get_by_id(contact_id=created.id)
    assert fetched.id == created.id
    assert fetched.properties["email"] == props["email"]


def test_get_by_id_returns_default_properties(client):
    props = contact_props(city="London")
    created = create(client, "contacts", props)
    got = client.crm.objects.basic_api.get_by_id("contacts", created.id)
    assert got.id == created.id
    assert got.properties["email"] == props["email"]
    assert got.properties["firstname"] == "Ada"
    assert got.properties["lastname"] == "Lovelace"
    assert got.properties["hs_object_id"] == created.id
    assert got.properties["createdate"] == created.properties["createdate"]
    # `city` is not a default contact property, so it stays out unless asked for.
    assert "city" not in got.properties
    assert set(got.properties) <= CONTACT_DEFAULTS
    assert got.associations is None
    assert got.properties_with_history is None


def test_get_by_id_with_properties_overrides_defaults(client):
    created = create(client, "contacts", contact_props(city="London", jobtitle="Analyst"))
    got = client.crm.objects.basic_api.get_by_id(
        "contacts", created.id, properties=["city", "jobtitle", "no_such_property"]
    )
    assert got.properties["city"] == "London"
    assert got.properties["jobtitle"] == "Analyst"
    # The id, create date and last-modified date always come along.
    assert got.properties["hs_object_id"] == created.id
    assert got.properties["createdate"] == created.properties["createdate"]
    assert got.properties["lastmodifieddate"] == created.properties["lastmodifieddate"]
    assert "firstname" not in got.properties
    assert "no_such_property" not in got.properties


def test_get_by_id_with_comma_separated_properties(client):
    created = create(client, "contacts", contact_props(city="Paris", jobtitle="Poet"))
    got = client.crm.objects.basic_api.get_by_id(
        "contacts", created.id, properties=["city,jobtitle"]
    )
    assert got.properties["city"] == "Paris"
    assert got.properties["jobtitle"] == "Poet"


def test_get_by_email_id_property(client):
    email = f"{unique('ada+tag')}@example.com"
    created = create(client, "contacts", contact_props(email=email))
    create(client, "contacts", contact_props())
    got = client.crm.objects.basic_api.get_by_id("contacts", email, id_property="email")
    assert got.id == created.id
    assert got.properties["email"] == email
    with pytest.raises(NotFoundException):
        client.crm.objects.basic_api.get_by_id(
            "contacts", "nobody@example.com", id_property="email"
        )


def test_contacts_package_get_by_email(client):
    email = f"{unique('grace')}@example.com"
    created = create(client, "contacts", contact_props(email=email))
    got = client.crm.contacts.basic_api.get_by_id(contact_id=email, id_property="email")
    assert got.id == created.id


def test_properties_with_history_newest_first(client):
    created = create(client, "contacts", contact_props(firstname="Ada"))
    client.crm.objects.basic_api.update(
        "contacts", created.id, SimplePublicObjectInput(properties={"firstname": "Augusta"})
    )
    got = client.crm.objects.basic_api.get_by_id(
        "contacts", created.id, properties_with_history=["firstname"]
    )
    history = got.properties_with_history["firstname"]
    assert [h.value for h in history] == ["Augusta", "Ada"]
    assert history[0].timestamp >= history[1].timestamp
    assert all(h.source_type for h in history)


def test_get_by_id_with_associations(client):
    company = create(client, "companies", {"name": "Analytical Engines", "domain": f"{unique()}.com"})
    contact = create(client, "contacts", contact_props(), associations=[to_company(company.id)])
    got = client.crm.objects.basic_api.get_by_id("contacts", contact.id, associations=["companies"])
    assoc = got.associations["companies"].results
    assert {a.id for a in assoc} == {company.id}
    assert all(a.type.startswith("contact_to_company") for a in assoc)

    back = client.crm.objects.basic_api.get_by_id("companies", company.id, associations=["contacts"])
    assert {a.id for a in back.associations["contacts"].results} == {contact.id}


def test_unknown_association_type_name_is_ignored(client):
    contact = create(client, "contacts", contact_props())
    got = client.crm.objects.basic_api.get_by_id(
        "contacts", contact.id, associations=["widgets_that_do_not_exist"]
    )
    assert got.id == contact.id


def test_update_merges_properties(client):
    props = contact_props(city="London")
    created = create(client, "contacts", props)
    updated = client.crm.objects.basic_api.update(
        "contacts", created.id, SimplePublicObjectInput(properties={"firstname": "Augusta"})
    )
    assert updated is not None
    assert updated.id == created.id
    assert updated.properties["firstname"] == "Augusta"
    assert updated.properties["email"] == props["email"]
    assert updated.updated_at >= created.updated_at
    got = client.crm.objects.basic_api.get_by_id(
        "contacts", created.id, properties=["firstname", "city", "lastmodifieddate"]
    )
    assert got.properties["firstname"] == "Augusta"
    assert got.properties["city"] == "London"
    assert got.updated_at == updated.updated_at


def test_update_by_email_id_property(client):
    email = f"{unique('up')}@example.com"
    created = create(client, "contacts", contact_props(email=email))
    updated = client.crm.objects.basic_api.update(
        "contacts",
        email,
        SimplePublicObjectInput(properties={"jobtitle": "Engineer"}),
        id_property="email",
    )
    assert updated.id == created.id
    got = client.crm.objects.basic_api.get_by_id("contacts", created.id, properties=["jobtitle"])
    assert got.properties["jobtitle"] == "Engineer"


def test_empty_string_clears_a_value(client):
    created = create(client, "contacts", contact_props(city="London"))
    client.crm.objects.basic_api.update(
        "contacts", created.id, SimplePublicObjectInput(properties={"city": ""})
    )
    got = client.crm.objects.basic_api.get_by_id("contacts", created.id, properties=["city"])
    assert got.properties.get("city") in (None, "")


def test_update_unknown_id_is_404(client):
    with pytest.raises(NotFoundException) as e:
        client.crm.objects.basic_api.update(
            "contacts", "987654321", SimplePublicObjectInput(properties={"firstname": "X"})
        )
    assert error_body(e.value)["category"] == "OBJECT_NOT_FOUND"


def test_archive_answers_204_and_hides_the_record(client):
    keep = create(client, "contacts", contact_props())
    gone = create(client, "contacts", contact_props())
    _, status, _ = client.crm.objects.basic_api.archive_with_http_info("contacts", gone.id)
    assert status == 204
    with pytest.raises(NotFoundException):
        client.crm.objects.basic_api.get_by_id("contacts", gone.id)
    listed = client.crm.objects.basic_api.get_page("contacts", limit=100)
    assert [r.id for r in listed.results] == [keep.id]


def test_archived_record_readable_with_archived_true(client):
    gone = create(client, "contacts", contact_props())
    client.crm.objects.basic_api.archive("contacts", gone.id)
    got = client.crm.objects.basic_api.get_by_id("contacts", gone.id, archived=True)
    assert got.id == gone.id
    assert got.archived is True
    assert isinstance(got.archived_at, datetime.datetime)


def test_archiving_twice_answers_204(client):
    gone = create(client, "contacts", contact_props())
    client.crm.objects.basic_api.archive("contacts", gone.id)
    _, status, _ = client.crm.objects.basic_api.archive_with_http_info("contacts", gone.id)
    assert status == 204


def test_list_archived_true_returns_only_archived(client):
    keep = create(client, "contacts", contact_props())
    gone = create(client, "contacts", contact_props())
    client.crm.objects.basic_api.archive("contacts", gone.id)
    page = client.crm.objects.basic_api.get_page("contacts", archived=True)
    assert [r.id for r in page.results] == [gone.id]
    assert page.results[0].archived is True
    live = client.crm.objects.basic_api.get_page("contacts", archived=False)
    assert [r.id for r in live.results] == [keep.id]


def test_list_pages_with_after_and_omits_paging_on_last_page(client):
    created = batch_create(client, "contacts", [contact_props() for _ in range(7)])
    seen, after, pages = [], None, 0
    while True:
        kwargs = {"limit": 3}
        if after:
            kwargs["after"] = after
        page = client.crm.objects.basic_api.get_page("contacts", **kwargs)
        pages += 1
        assert len(page.results) <= 3
        seen.extend(r.id for r in page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
        assert after
        assert pages < 10
    assert pages == 3
    assert sorted(seen, key=int) == sorted((r.id for r in created), key=int)
    assert len(set(seen)) == 7


def test_list_default_limit_is_10(client):
    batch_create(client, "contacts", [contact_props() for _ in range(12)])
    page = client.crm.objects.basic_api.get_page("contacts")
    assert len(page.results) == 10
    assert page.paging.next.after


def test_list_with_properties_history_and_associations(client):
    company = create(client, "companies", {"name": "Acme", "domain": f"{unique()}.com"})
    contact = create(
        client,
        "contacts",
        contact_props(city="Oslo"),
        associations=[to_company(company.id)],
    )
    client.crm.objects.basic_api.update(
        "contacts", contact.id, SimplePublicObjectInput(properties={"city": "Bergen"})
    )
    page = client.crm.objects.basic_api.get_page(
        "contacts",
        properties=["city"],
        properties_with_history=["city"],
        associations=["companies"],
    )
    [r] = page.results
    assert r.properties["city"] == "Bergen"
    assert "firstname" not in r.properties
    assert [h.value for h in r.properties_with_history["city"]] == ["Bergen", "Oslo"]
    assert {a.id for a in r.associations["companies"].results} == {company.id}


def test_get_all_follows_every_page(client):
    created = batch_create(client, "contacts", [contact_props() for _ in range(105)])
    everything = client.crm.objects.get_all("contacts")
    assert len(everything) == 105
    assert {r.id for r in everything} == {r.id for r in created}
    via_package = client.crm.contacts.get_all()
    assert {r.id for r in via_package} == {r.id for r in created}


def test_get_all_with_properties_with_history(client):
    created = batch_create(
        client, "companies", [{"name": f"Co {i}", "domain": f"{unique()}.com"} for i in range(55)]
    )
    everything = client.crm.objects.get_all(
        "companies", properties=["name"], properties_with_history=["name"]
    )
    assert {r.id for r in everything} == {r.id for r in created}
    for r in everything:
        assert [h.value for h in r.properties_with_history["name"]] == [r.properties["name"]]
    # The companies helper asks for pages of 50 when history is requested.
    paged = client.crm.companies.get_all(properties=["name"], properties_with_history=["name"])
    assert {r.id for r in paged} == {r.id for r in created}


def test_get_all_with_limit(client):
    batch_create(client, "contacts", [contact_props() for _ in range(15)])
    # The per-object helpers take `limit` as a cap on the total.
    assert len(client.crm.contacts.get_all(limit=12)) == 12


def test_object_type_id_and_singular_name_address_the_same_records(client):
    created = create(client, "contacts", contact_props())
    for name in ("contacts", "contact", "0-1"):
        got = client.crm.objects.basic_api.get_by_id(name, created.id)
        assert got.id == created.id


@pytest.mark.parametrize("prop", ["hs_object_id", "createdate", "lastmodifieddate"])
def test_read_only_property_cannot_be_written(client, prop):
    value = "42" if prop == "hs_object_id" else "2024-01-01T00:00:00.000Z"
    with pytest.raises(ApiException) as e:
        create(client, "contacts", contact_props(**{prop: value}))
    assert e.value.status == 400
    assert error_body(e.value)["category"] == "VALIDATION_ERROR"
    existing = create(client, "contacts", contact_props())
    with pytest.raises(ApiException) as e:
        client.crm.objects.basic_api.update(
            "contacts", existing.id, SimplePublicObjectInput(properties={prop: value})
        )
    assert e.value.status == 400
