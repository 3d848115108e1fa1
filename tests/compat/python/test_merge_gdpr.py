"""Merging records and erasing a contact for good, through the calls the generated client
makes: `crm.contacts.basic_api.merge` (and the same for companies, deals, tickets) and
`crm.contacts.basic_api.purge` (`gdpr-delete`)."""

import pytest
from hubspot.crm.contacts import PublicGdprDeleteInput, PublicMergeInput, SimplePublicObjectInputForCreate
from hubspot.crm.contacts.exceptions import ApiException

from helpers import create, error_body, unique


def contact(client, **props):
    return client.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties=props))


def associated_companies(client, contact_id):
    page = client.crm.associations.v4.basic_api.get_page("contacts", contact_id, "companies")
    return sorted(r.to_object_id for r in page.results)


def test_merge_keeps_the_primary_and_fills_its_gaps(client):
    a = contact(client, email=f"{unique('a')}@example.com", firstname="Ada")
    b = contact(client, email=f"{unique('b')}@example.com", lastname="Lovelace", phone="+44 20 1234")
    co1 = create(client, "companies", {"name": "Analytical Engines"})
    co2 = create(client, "companies", {"name": "Difference Engines"})
    client.crm.associations.v4.basic_api.create_default("contacts", a.id, "companies", co1.id)
    client.crm.associations.v4.basic_api.create_default("contacts", b.id, "companies", co2.id)

    merged = client.crm.contacts.basic_api.merge(PublicMergeInput(primary_object_id=a.id, object_id_to_merge=b.id))
    assert merged.id == a.id
    assert merged.properties["firstname"] == "Ada"
    # Gaps filled from the merged record; the primary's own values kept.
    read = client.crm.contacts.basic_api.get_by_id(
        a.id, properties=["email", "firstname", "lastname", "phone", "hs_merged_object_ids"]
    )
    assert read.properties["lastname"] == "Lovelace" and read.properties["phone"] == "+44 20 1234"
    assert read.properties["email"] == a.properties["email"]
    assert read.properties["hs_merged_object_ids"] == b.id
    # Associations moved over.
    assert associated_companies(client, a.id) == sorted([co1.id, co2.id])
    # The merged id, and the merged record's e-mail, lead to the primary.
    old = client.crm.contacts.basic_api.get_by_id(b.id)
    assert old.id == a.id
    by_email = client.crm.contacts.basic_api.get_by_id(b.properties["email"], id_property="email")
    assert by_email.id == a.id
    # The merged record is not in the list, nor in the recycle bin.
    listed = [c.id for c in client.crm.contacts.get_all()]
    assert a.id in listed and b.id not in listed
    binned = client.crm.contacts.basic_api.get_page(archived=True).results
    assert b.id not in [c.id for c in binned]
    # The history of the primary shows the merge.
    hist = client.crm.contacts.basic_api.get_by_id(a.id, properties_with_history=["lastname"])
    assert hist.properties_with_history["lastname"][0].value == "Lovelace"


def test_merge_refuses_what_it_cannot_merge(client):
    a = contact(client, email=f"{unique('a')}@example.com")
    with pytest.raises(ApiException) as e:
        client.crm.contacts.basic_api.merge(PublicMergeInput(primary_object_id=a.id, object_id_to_merge=a.id))
    assert e.value.status == 400 and "itself" in error_body(e.value)["message"]
    with pytest.raises(ApiException) as e:
        client.crm.contacts.basic_api.merge(PublicMergeInput(primary_object_id=a.id, object_id_to_merge="999999"))
    assert e.value.status == 404
    note = create(client, "notes", {"hs_timestamp": "2026-01-01T00:00:00Z", "hs_note_body": "x"})
    other = create(client, "notes", {"hs_timestamp": "2026-01-01T00:00:00Z", "hs_note_body": "y"})
    r = client.api_request(
        {"method": "POST", "path": "/crm/v3/objects/notes/merge", "body": {"primaryObjectId": note.id, "objectIdToMerge": other.id}}
    )
    assert r.status_code == 400


def test_deals_companies_and_tickets_merge_too(client):
    d1 = create(client, "deals", {"dealname": "Big", "dealstage": "qualifiedtobuy"})
    d2 = create(client, "deals", {"dealname": "Big (copy)", "dealstage": "qualifiedtobuy", "amount": "1200"})
    merged = client.crm.deals.basic_api.merge(PublicMergeInput(primary_object_id=d1.id, object_id_to_merge=d2.id))
    assert merged.id == d1.id
    read = client.crm.deals.basic_api.get_by_id(d1.id, properties=["dealname", "amount"])
    assert read.properties["dealname"] == "Big" and read.properties["amount"] == "1200"
    c1 = create(client, "companies", {"name": "One", "domain": f"{unique('o')}.example"})
    c2 = create(client, "companies", {"name": "One Inc", "domain": f"{unique('p')}.example"})
    assert client.crm.companies.basic_api.merge(PublicMergeInput(primary_object_id=c1.id, object_id_to_merge=c2.id)).id == c1.id
    t1 = create(client, "tickets", {"subject": "Broken", "hs_pipeline_stage": "1"})
    t2 = create(client, "tickets", {"subject": "Still broken", "hs_pipeline_stage": "2"})
    assert client.crm.tickets.basic_api.merge(PublicMergeInput(primary_object_id=t1.id, object_id_to_merge=t2.id)).id == t1.id


def test_gdpr_delete_erases_and_blocks(client):
    email = f"{unique('gone')}@example.com"
    c = contact(client, email=email, firstname="Erin")
    co = create(client, "companies", {"name": "Keeps"})
    client.crm.associations.v4.basic_api.create_default("contacts", c.id, "companies", co.id)
    client.crm.contacts.basic_api.purge(PublicGdprDeleteInput(object_id=c.id))
    # Gone for good: not readable, not in the recycle bin, no association left behind.
    with pytest.raises(ApiException) as e:
        client.crm.contacts.basic_api.get_by_id(c.id)
    assert e.value.status == 404
    with pytest.raises(ApiException) as e:
        client.crm.contacts.basic_api.get_by_id(c.id, archived=True)
    assert e.value.status == 404
    page = client.crm.associations.v4.basic_api.get_page("companies", co.id, "contacts")
    assert page.results == []
    # The address cannot come back, whatever its case.
    with pytest.raises(ApiException) as e:
        contact(client, email=email.upper(), firstname="Erin again")
    assert e.value.status == 400 and "GDPR" in error_body(e.value)["message"]


def test_gdpr_delete_by_email_blocks_an_unknown_address(client):
    email = f"{unique('never')}@example.com"
    known = f"{unique('known')}@example.com"
    c = contact(client, email=known)
    client.crm.contacts.basic_api.purge(PublicGdprDeleteInput(object_id=known.upper(), id_property="email"))
    with pytest.raises(ApiException) as e:
        client.crm.contacts.basic_api.get_by_id(c.id)
    assert e.value.status == 404
    client.crm.contacts.basic_api.purge(PublicGdprDeleteInput(object_id=email, id_property="email"))
    with pytest.raises(ApiException) as e:
        contact(client, email=email)
    assert e.value.status == 400
    with pytest.raises(ApiException) as e:
        client.crm.contacts.basic_api.purge(PublicGdprDeleteInput(object_id="123456789"))
    assert e.value.status == 404


def test_gdpr_delete_of_a_merged_contact_erases_both(client):
    a = contact(client, email=f"{unique('a')}@example.com")
    b_email = f"{unique('b')}@example.com"
    b = contact(client, email=b_email)
    client.crm.contacts.basic_api.merge(PublicMergeInput(primary_object_id=a.id, object_id_to_merge=b.id))
    client.crm.contacts.basic_api.purge(PublicGdprDeleteInput(object_id=b.id))
    for gone in (a.id, b.id):
        with pytest.raises(ApiException) as e:
            client.crm.contacts.basic_api.get_by_id(gone)
        assert e.value.status == 404
    with pytest.raises(ApiException) as e:
        contact(client, email=b_email)
    assert e.value.status == 400
