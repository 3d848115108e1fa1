"""Errors as a client sees them: ApiException status codes and the JSON error envelope."""

import re

import pytest
from hubspot.crm.objects import (
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchReadInputSimplePublicObjectId,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInputForCreate,
    SimplePublicObjectId,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.objects.exceptions import (
    ApiException,
    NotFoundException,
    UnauthorizedException,
)

from helpers import create, error_body, expect_status, make_client, unique


def new_contact(**props):
    return SimplePublicObjectInputForCreate(
        properties={"email": f"{unique()}@example.com", **props}, associations=[]
    )


def expect_400(call):
    with pytest.raises(ApiException) as e:
        call()
    assert e.value.status == 400, e.value.body
    body = error_body(e.value)
    assert body["category"] == "VALIDATION_ERROR"
    return body


def test_unknown_property_on_create_is_400(client):
    body = expect_400(
        lambda: client.crm.objects.basic_api.create("contacts", new_contact(no_such_property="x"))
    )
    assert "no_such_property" in body["message"]
    assert client.crm.objects.basic_api.get_page("contacts").results == []


def test_unknown_property_on_update_is_400(client):
    c = create(client, "contacts", {"email": f"{unique()}@example.com"})
    expect_400(
        lambda: client.crm.objects.basic_api.update(
            "contacts", c.id, SimplePublicObjectInput(properties={"no_such_property": "x"})
        )
    )


def test_bad_option_value_is_400(client):
    body = expect_400(
        lambda: client.crm.objects.basic_api.create("contacts", new_contact(lifecyclestage="bogus"))
    )
    assert "lifecyclestage" in body["message"]


def test_bad_number_is_400(client):
    body = expect_400(
        lambda: client.crm.objects.basic_api.create("contacts", new_contact(num_employees="lots"))
    )
    assert "num_employees" in body["message"]


def test_bad_date_is_400(client):
    expect_400(
        lambda: client.crm.objects.basic_api.create(
            "contacts", new_contact(date_of_birth="2024-05-01T10:30:00Z")
        )
    )


def test_bad_boolean_is_400(client):
    expect_400(
        lambda: client.crm.objects.basic_api.create("contacts", new_contact(hs_email_optout="maybe"))
    )


def test_search_limit_over_200_is_400(client):
    expect_400(
        lambda: client.crm.objects.search_api.do_search(
            "contacts", PublicObjectSearchRequest(limit=201)
        )
    )
    res = client.crm.objects.search_api.do_search("contacts", PublicObjectSearchRequest(limit=200))
    assert res.total == 0


def test_search_too_many_filter_groups_is_400(client):
    groups = [
        FilterGroup(filters=[Filter(property_name="email", operator="HAS_PROPERTY")]) for _ in range(6)
    ]
    expect_400(
        lambda: client.crm.objects.search_api.do_search(
            "contacts", PublicObjectSearchRequest(filter_groups=groups)
        )
    )


def test_batch_create_over_100_inputs_is_400(client):
    body = BatchInputSimplePublicObjectBatchInputForCreate(
        inputs=[
            SimplePublicObjectBatchInputForCreate(
                properties={"email": f"{unique()}@example.com"}, associations=[]
            )
            for _ in range(101)
        ]
    )
    expect_400(lambda: client.crm.objects.batch_api.create("contacts", body))
    assert client.crm.objects.basic_api.get_page("contacts").results == []


def test_batch_read_over_100_inputs_is_400(client):
    body = BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=str(i)) for i in range(1, 102)],
        properties=[],
        properties_with_history=[],
    )
    expect_400(lambda: client.crm.objects.batch_api.read("contacts", body))


def test_list_limit_over_100_is_400(client):
    expect_400(lambda: client.crm.objects.basic_api.get_page("contacts", limit=101))


def test_unknown_object_type_is_400(client):
    expect_400(lambda: client.crm.objects.basic_api.get_page("widgets"))


def test_duplicate_contact_email_is_409(client):
    email = f"{unique()}@example.com"
    first = create(client, "contacts", {"email": email})
    with pytest.raises(ApiException) as e:
        client.crm.objects.basic_api.create(
            "contacts", SimplePublicObjectInputForCreate(properties={"email": email})
        )
    assert e.value.status == 409
    body = error_body(e.value)
    assert body["category"] == "CONFLICT"
    # HubSpot names the existing record: "Contact already exists. Existing ID: 123".
    assert re.search(rf"\b{first.id}\b", body["message"]), body["message"]
    assert len(client.crm.objects.basic_api.get_page("contacts").results) == 1


def test_duplicate_email_on_update_is_409(client):
    taken = f"{unique()}@example.com"
    create(client, "contacts", {"email": taken})
    other = create(client, "contacts", {"email": f"{unique()}@example.com"})
    with pytest.raises(ApiException) as e:
        client.crm.objects.basic_api.update(
            "contacts", other.id, SimplePublicObjectInput(properties={"email": taken})
        )
    assert e.value.status == 409
    assert error_body(e.value)["category"] == "CONFLICT"


def test_missing_record_is_404_with_json_body(client):
    with pytest.raises(NotFoundException) as e:
        client.crm.objects.basic_api.get_by_id("contacts", "987654321")
    assert e.value.status == 404
    assert error_body(e.value)["category"] == "OBJECT_NOT_FOUND"


def test_bad_token_is_401(base_url, account):
    bad = make_client(base_url, account.token[:-4] + "0000")
    with pytest.raises(UnauthorizedException) as e:
        bad.crm.objects.basic_api.get_page("contacts")
    assert e.value.status == 401
    assert error_body(e.value)["category"] == "INVALID_AUTHENTICATION"


def test_missing_token_is_401(base_url):
    from hubspot import HubSpot

    anonymous = HubSpot(host=base_url, client_side_validation=True)
    with pytest.raises(UnauthorizedException) as e:
        anonymous.crm.objects.basic_api.get_page("contacts")
    assert error_body(e.value)["category"] == "INVALID_AUTHENTICATION"


def test_garbage_token_is_401_on_every_api(base_url):
    bad = make_client(base_url, "not-a-token")
    calls = [
        lambda: bad.crm.objects.basic_api.get_page("contacts"),
        lambda: bad.crm.properties.core_api.get_all("contacts"),
        lambda: bad.crm.schemas.core_api.get_all(),
        lambda: bad.crm.owners.owners_api.get_page(),
        lambda: bad.crm.associations.v4.schema.definitions_api.get_all("contacts", "companies"),
    ]
    for call in calls:
        with pytest.raises(Exception) as e:
            call()
        assert getattr(e.value, "status", None) == 401
        assert error_body(e.value)["category"] == "INVALID_AUTHENTICATION"


def test_error_body_has_the_required_fields(client):
    with pytest.raises(ApiException) as e:
        client.crm.objects.basic_api.create("contacts", new_contact(no_such_property="x"))
    body = error_body(e.value)
    assert body["status"] == "error"
    ids = set()
    for _ in range(2):
        with pytest.raises(ApiException) as e:
            client.crm.objects.basic_api.create("contacts", new_contact(no_such_property="x"))
        ids.add(error_body(e.value)["correlationId"])
    assert len(ids) == 2


# Account isolation: one account's token never reaches another account's data.


@pytest.fixture
def theirs(other_account):
    """A contact, company and association in the other account."""
    c = other_account.client
    company = create(c, "companies", {"name": "Their Co", "domain": f"{unique()}.com"})
    contact = create(
        c, "contacts", {"email": f"{unique('secret')}@example.com", "firstname": "Secret"}
    )
    c.crm.associations.v4.basic_api.create_default("contacts", contact.id, "companies", company.id)
    return {"contact": contact, "company": company, "client": c}


def test_other_accounts_record_is_404(client, theirs):
    contact = theirs["contact"]
    with pytest.raises(NotFoundException):
        client.crm.objects.basic_api.get_by_id("contacts", contact.id)
    with pytest.raises(NotFoundException):
        client.crm.objects.basic_api.get_by_id(
            "contacts", contact.properties["email"], id_property="email"
        )
    with pytest.raises(NotFoundException):
        client.crm.objects.basic_api.update(
            "contacts", contact.id, SimplePublicObjectInput(properties={"firstname": "Stolen"})
        )
    expect_status(
        404, lambda: client.crm.associations.v4.basic_api.get_page("contacts", contact.id, "companies")
    )
    still = theirs["client"].crm.objects.basic_api.get_by_id("contacts", contact.id)
    assert still.properties["firstname"] == "Secret"


def test_other_accounts_records_are_not_listed_or_found(client, theirs):
    assert client.crm.objects.basic_api.get_page("contacts").results == []
    res = client.crm.objects.search_api.do_search("contacts", PublicObjectSearchRequest())
    assert res.total == 0
    res = client.crm.objects.search_api.do_search(
        "contacts", PublicObjectSearchRequest(query="Secret")
    )
    assert res.total == 0
    read, status, _ = client.crm.objects.batch_api.read_with_http_info(
        "contacts",
        BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id=theirs["contact"].id)],
            properties=[],
            properties_with_history=[],
        ),
    )
    assert status == 207
    assert read.results == []


def test_other_account_cannot_archive_or_associate(client, theirs):
    contact, company = theirs["contact"], theirs["company"]
    try:
        client.crm.objects.basic_api.archive("contacts", contact.id)
    except NotFoundException:
        pass
    mine = create(client, "companies", {"name": "Mine"})
    expect_status(
        404,
        lambda: client.crm.associations.v4.basic_api.create_default(
            "companies", mine.id, "contacts", contact.id
        ),
    )
    other = theirs["client"]
    assert other.crm.objects.basic_api.get_by_id("contacts", contact.id).archived is False
    page = other.crm.associations.v4.basic_api.get_page("contacts", contact.id, "companies")
    assert [str(r.to_object_id) for r in page.results] == [company.id]


def test_other_accounts_email_can_be_reused(client, theirs):
    email = theirs["contact"].properties["email"]
    mine = create(client, "contacts", {"email": email})
    assert mine.properties["email"] == email
    got = client.crm.objects.basic_api.get_by_id("contacts", email, id_property="email")
    assert got.id == mine.id


def test_other_accounts_custom_schema_is_invisible(client, other_account):
    from helpers import create_custom_object
    from hubspot.crm.schemas.exceptions import NotFoundException as SchemaNotFound

    schema = create_custom_object(other_account.client)
    assert client.crm.schemas.core_api.get_all().results == []
    with pytest.raises(SchemaNotFound):
        client.crm.schemas.core_api.get_by_id(schema.object_type_id)
    expect_400(lambda: client.crm.objects.basic_api.get_page(schema.object_type_id))


def test_other_accounts_custom_property_is_invisible(client, other_account):
    from hubspot.crm.properties import PropertyCreate
    from hubspot.crm.properties.exceptions import NotFoundException as PropertyNotFound

    name = unique("private_")
    other_account.client.crm.properties.core_api.create(
        "contacts",
        PropertyCreate(name=name, label="Private", type="string", field_type="text", group_name="contactinformation"),
    )
    with pytest.raises(PropertyNotFound):
        client.crm.properties.core_api.get_by_name("contacts", name)
    expect_400(
        lambda: client.crm.objects.basic_api.create("contacts", new_contact(**{name: "x"}))
    )
