"""`crm.owners.owners_api`: users of an account are its owners."""

import datetime

import pytest
from hubspot.crm.objects import SimplePublicObjectInput
from hubspot.crm.objects.exceptions import ApiException as ObjectsApiException
from hubspot.crm.owners.exceptions import NotFoundException

from helpers import create, unique


@pytest.fixture
def owners(account):
    people = [("Ada", "Lovelace"), ("Grace", "Hopper"), ("Alan", "Turing")]
    out = []
    for first, last in people:
        email = f"{unique(first.lower())}@example.com"
        user_id = account.create_user(email, first, last)
        out.append({"email": email, "first": first, "last": last, "user_id": user_id})
    return out


def test_get_page_lists_owners(client, owners):
    res = client.crm.owners.owners_api.get_page()
    assert res.paging is None
    by_email = {o.email: o for o in res.results}
    assert set(by_email) == {o["email"] for o in owners}
    for o in owners:
        got = by_email[o["email"]]
        assert got.id.isdigit()
        assert (got.first_name, got.last_name) == (o["first"], o["last"])
        assert got.user_id == o["user_id"]
        assert got.type == "PERSON"
        assert got.archived is False
        assert isinstance(got.created_at, datetime.datetime)


def test_get_page_by_email(client, owners):
    res = client.crm.owners.owners_api.get_page(email=owners[1]["email"])
    assert [o.email for o in res.results] == [owners[1]["email"]]


def test_get_page_paging(client, owners):
    first = client.crm.owners.owners_api.get_page(limit=2)
    assert len(first.results) == 2
    after = first.paging.next.after
    second = client.crm.owners.owners_api.get_page(limit=2, after=after)
    assert second.paging is None
    emails = [o.email for o in first.results + second.results]
    assert sorted(emails) == sorted(o["email"] for o in owners)


def test_get_by_id(client, owners):
    listed = client.crm.owners.owners_api.get_page(email=owners[0]["email"]).results[0]
    got = client.crm.owners.owners_api.get_by_id(int(listed.id))
    assert got.id == listed.id
    assert got.email == owners[0]["email"]
    by_user = client.crm.owners.owners_api.get_by_id(owners[0]["user_id"], id_property="userId")
    assert by_user.id == listed.id


def test_unknown_owner_is_404(client, owners):
    with pytest.raises(NotFoundException):
        client.crm.owners.owners_api.get_by_id(987654321)


def test_owners_are_per_account(client, owners, other_account):
    theirs = [f"{unique('other')}@example.com" for _ in range(len(owners) + 1)]
    for email in theirs:
        other_account.create_user(email, "Other", "Person")
    mine = client.crm.owners.owners_api.get_page()
    assert {o.email for o in mine.results} == {o["email"] for o in owners}
    listed = other_account.client.crm.owners.owners_api.get_page().results
    assert {o.email for o in listed} == set(theirs)
    for o in listed:
        try:
            seen = client.crm.owners.owners_api.get_by_id(int(o.id))
        except NotFoundException:
            continue
        # Owner ids may coincide between accounts; the answer must be this account's owner.
        assert seen.email in {x["email"] for x in owners}
    # The other account has more owners than this one, so at least one id is unknown here.
    unknown = [o for o in listed if o.id not in {m.id for m in mine.results}]
    assert unknown
    with pytest.raises(NotFoundException):
        client.crm.owners.owners_api.get_by_id(int(unknown[0].id))


def test_records_take_an_owner(client, owners):
    owner = client.crm.owners.owners_api.get_page(email=owners[2]["email"]).results[0]
    deal = create(
        client,
        "deals",
        {"dealname": "Owned", "pipeline": "default", "dealstage": "closedwon", "hubspot_owner_id": owner.id},
    )
    got = client.crm.objects.basic_api.get_by_id("deals", deal.id, properties=["hubspot_owner_id"])
    assert got.properties["hubspot_owner_id"] == owner.id
    with pytest.raises(ObjectsApiException) as e:
        client.crm.objects.basic_api.update(
            "deals", deal.id, SimplePublicObjectInput(properties={"hubspot_owner_id": "123"})
        )
    assert e.value.status == 400
