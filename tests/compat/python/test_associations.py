"""Associations: v4 basic, v4 batch, v4 labels (definitions) and the v3 batch API."""

import pytest
from hubspot.crm.associations import BatchInputPublicAssociation, BatchInputPublicObjectId
from hubspot.crm.associations import PublicAssociation
from hubspot.crm.associations import PublicObjectId as V3ObjectId
from hubspot.crm.associations.v4 import (
    AssociationSpec,
    BatchInputPublicAssociationMultiArchive,
    BatchInputPublicAssociationMultiPost,
    BatchInputPublicDefaultAssociationMultiPost,
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicAssociationMultiArchive,
    PublicAssociationMultiPost,
    PublicDefaultAssociationMultiPost,
    PublicFetchAssociationsBatchRequest,
    PublicObjectId,
)
from hubspot.crm.associations.v4.exceptions import NotFoundException
from hubspot.crm.associations.v4.schema import (
    PublicAssociationDefinitionCreateRequest,
    PublicAssociationDefinitionUpdateRequest,
)
from hubspot.crm.association_type import AssociationType
from hubspot.crm.objects import AssociationSpec as ObjectsAssociationSpec
from hubspot.crm.objects import PublicAssociationsForObject
from hubspot.crm.objects import PublicObjectId as ObjectsObjectId

from helpers import batch_create, create, create_custom_object, unique


def contact(client, **props):
    return create(client, "contacts", {"email": f"{unique()}@example.com", **props})


def company(client, name="Acme"):
    return create(client, "companies", {"name": name, "domain": f"{unique()}.com"})


def spec(type_id, category="HUBSPOT_DEFINED"):
    return AssociationSpec(association_category=category, association_type_id=type_id)


def associated(client, from_type, from_id, to_type):
    """{to id: set of type ids} from v4 get_page."""
    page = client.crm.associations.v4.basic_api.get_page(from_type, from_id, to_type)
    return {str(r.to_object_id): {t.type_id for t in r.association_types} for r in page.results}


# v4 basic


def test_create_labelled_answers_201(client):
    c, co = contact(client), company(client)
    res, status, _ = client.crm.associations.v4.basic_api.create_with_http_info(
        "contacts", c.id, "companies", co.id, [spec(AssociationType.CONTACT_TO_COMPANY)]
    )
    assert status == 201
    assert str(res.from_object_id) == c.id
    assert str(res.to_object_id) == co.id
    assert res.from_object_type_id == "0-1"
    assert res.to_object_type_id == "0-2"
    assert res.labels == []
    assert associated(client, "contacts", c.id, "companies") == {co.id: {279}}
    # Associations work both ways, with the inverse type.
    assert associated(client, "companies", co.id, "contacts") == {c.id: {280}}


def test_create_primary_label(client):
    c, co = contact(client), company(client)
    res = client.crm.associations.v4.basic_api.create(
        "contacts",
        c.id,
        "companies",
        co.id,
        [spec(AssociationType.PRIMARY_CONTACT_TO_COMPANY), spec(AssociationType.CONTACT_TO_COMPANY)],
    )
    assert res.labels == ["Primary"]
    page = client.crm.associations.v4.basic_api.get_page("contacts", c.id, "companies")
    [r] = page.results
    types = {t.type_id: t for t in r.association_types}
    assert set(types) == {1, 279}
    assert types[1].label == "Primary"
    assert types[1].category == "HUBSPOT_DEFINED"
    assert associated(client, "companies", co.id, "contacts") == {c.id: {2, 280}}


def test_create_default_answers_200(client):
    c, co = contact(client), company(client)
    res, status, _ = client.crm.associations.v4.basic_api.create_default_with_http_info(
        "contacts", c.id, "companies", co.id
    )
    assert status == 200
    assert res.status == "COMPLETE"
    specs = {(r._from.id, r.to.id, r.association_spec.association_type_id) for r in res.results}
    assert (c.id, co.id, 279) in specs
    assert associated(client, "contacts", c.id, "companies") == {co.id: {279}}


def test_get_page_paging(client):
    c = contact(client)
    companies = [company(client, f"Co {i}") for i in range(3)]
    for co in companies:
        client.crm.associations.v4.basic_api.create_default("contacts", c.id, "companies", co.id)
    first = client.crm.associations.v4.basic_api.get_page("contacts", c.id, "companies", limit=2)
    assert len(first.results) == 2
    after = first.paging.next.after
    second = client.crm.associations.v4.basic_api.get_page(
        "contacts", c.id, "companies", limit=2, after=after
    )
    assert second.paging is None
    seen = [str(r.to_object_id) for r in first.results + second.results]
    assert sorted(seen) == sorted(co.id for co in companies)


def test_archive_removes_both_directions(client):
    c, co, other = contact(client), company(client), company(client, "Other")
    client.crm.associations.v4.basic_api.create(
        "contacts", c.id, "companies", co.id, [spec(1), spec(279)]
    )
    client.crm.associations.v4.basic_api.create_default("contacts", c.id, "companies", other.id)
    _, status, _ = client.crm.associations.v4.basic_api.archive_with_http_info(
        "contacts", c.id, "companies", co.id
    )
    assert status == 204
    assert associated(client, "contacts", c.id, "companies") == {other.id: {279}}
    assert associated(client, "companies", co.id, "contacts") == {}


def test_get_page_of_unknown_record_is_404(client):
    with pytest.raises(NotFoundException):
        client.crm.associations.v4.basic_api.get_page("contacts", "987654321", "companies")


def test_archived_record_drops_out_of_associations(client):
    c, co = contact(client), company(client)
    client.crm.associations.v4.basic_api.create_default("contacts", c.id, "companies", co.id)
    client.crm.objects.basic_api.archive("contacts", c.id)
    assert associated(client, "companies", co.id, "contacts") == {}


PAIRS = [
    # (from, to, default type id from -> to, inverse type id), from the client's AssociationType.
    ("deals", "contacts", AssociationType.DEAL_TO_CONTACT, AssociationType.CONTACT_TO_DEAL),
    ("deals", "companies", AssociationType.DEAL_TO_COMPANY, AssociationType.COMPANY_TO_DEAL),
    ("tickets", "contacts", AssociationType.TICKET_TO_CONTACT, AssociationType.CONTACT_TO_TICKET),
    ("contacts", "notes", AssociationType.CONTACT_TO_NOTE, AssociationType.NOTE_TO_CONTACT),
    ("calls", "contacts", AssociationType.CALL_TO_CONTACT, AssociationType.CONTACT_TO_CALL),
    ("tasks", "companies", AssociationType.TASK_TO_COMPANY, AssociationType.COMPANY_TO_TASK),
    ("meetings", "deals", AssociationType.MEETING_TO_DEAL, AssociationType.DEAL_TO_MEETING),
    ("emails", "tickets", AssociationType.EMAIL_TO_TICKET, AssociationType.TICKET_TO_EMAIL),
]

SAMPLE = {
    "contacts": lambda: {"email": f"{unique()}@example.com"},
    "companies": lambda: {"name": "Acme"},
    "deals": lambda: {"dealname": "D", "pipeline": "default", "dealstage": "closedwon"},
    "tickets": lambda: {"subject": "T", "hs_pipeline": "0", "hs_pipeline_stage": "1"},
    "notes": lambda: {"hs_note_body": "n", "hs_timestamp": "2024-05-01T12:00:00.000Z"},
    "calls": lambda: {"hs_call_title": "c", "hs_timestamp": "2024-05-01T12:00:00.000Z"},
    "tasks": lambda: {"hs_task_subject": "t", "hs_timestamp": "2024-05-01T12:00:00.000Z"},
    "meetings": lambda: {"hs_meeting_title": "m", "hs_timestamp": "2024-05-01T12:00:00.000Z"},
    "emails": lambda: {"hs_email_subject": "e", "hs_timestamp": "2024-05-01T12:00:00.000Z"},
    "products": lambda: {"name": "P"},
    "conversations": lambda: {"hs_conversation_subject": "c", "hs_timestamp": "2024-05-01T12:00:00.000Z"},
}


@pytest.mark.parametrize("from_type,to_type,type_id,inverse_id", PAIRS)
def test_default_association_uses_hubspot_type_ids(client, from_type, to_type, type_id, inverse_id):
    a = create(client, from_type, SAMPLE[from_type]())
    b = create(client, to_type, SAMPLE[to_type]())
    client.crm.associations.v4.basic_api.create_default(from_type, a.id, to_type, b.id)
    assert associated(client, from_type, a.id, to_type) == {b.id: {type_id}}
    assert associated(client, to_type, b.id, from_type) == {a.id: {inverse_id}}


def test_custom_object_associations(client):
    schema = create_custom_object(client, associated=["CONTACT"])
    car = create(client, schema.object_type_id, {"model": "Beetle"})
    c = contact(client)
    client.crm.associations.v4.basic_api.create_default(schema.object_type_id, car.id, "contacts", c.id)
    assert set(associated(client, schema.object_type_id, car.id, "contacts")) == {c.id}
    assert set(associated(client, "contacts", c.id, schema.fully_qualified_name)) == {car.id}
    got = client.crm.objects.basic_api.get_by_id(
        "contacts", c.id, associations=[schema.fully_qualified_name]
    )
    assert {a.id for a in got.associations[schema.fully_qualified_name].results} == {car.id}


# v4 batch


def test_batch_create_answers_201(client):
    contacts = [contact(client) for _ in range(2)]
    co = company(client)
    res, status, _ = client.crm.associations.v4.batch_api.create_with_http_info(
        "contacts",
        "companies",
        BatchInputPublicAssociationMultiPost(
            inputs=[
                PublicAssociationMultiPost(
                    _from=PublicObjectId(id=c.id), to=PublicObjectId(id=co.id), types=[spec(279)]
                )
                for c in contacts
            ]
        ),
    )
    assert status == 201
    assert res.status == "COMPLETE"
    assert sorted(str(r.from_object_id) for r in res.results) == sorted(c.id for c in contacts)
    assert {str(r.to_object_id) for r in res.results} == {co.id}
    assert set(associated(client, "companies", co.id, "contacts")) == {c.id for c in contacts}


def test_batch_create_with_a_missing_record_is_207(client):
    c, co = contact(client), company(client)
    res, status, _ = client.crm.associations.v4.batch_api.create_with_http_info(
        "contacts",
        "companies",
        BatchInputPublicAssociationMultiPost(
            inputs=[
                PublicAssociationMultiPost(
                    _from=PublicObjectId(id=c.id), to=PublicObjectId(id=co.id), types=[spec(279)]
                ),
                PublicAssociationMultiPost(
                    _from=PublicObjectId(id=c.id), to=PublicObjectId(id="987654321"), types=[spec(279)]
                ),
            ]
        ),
    )
    assert status == 207
    assert [str(r.to_object_id) for r in res.results] == [co.id]
    assert res.num_errors == 1
    assert associated(client, "contacts", c.id, "companies") == {co.id: {279}}


def test_batch_read(client):
    c1, c2, lonely = contact(client), contact(client), contact(client)
    co1, co2 = company(client, "One"), company(client, "Two")
    for c, co in ((c1, co1), (c1, co2), (c2, co2)):
        client.crm.associations.v4.basic_api.create_default("contacts", c.id, "companies", co.id)
    res, status, _ = client.crm.associations.v4.batch_api.get_page_with_http_info(
        "contacts",
        "companies",
        BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[PublicFetchAssociationsBatchRequest(id=x.id) for x in (c1, c2, lonely)]
        ),
    )
    assert status == 200
    got = {r._from.id: {str(t.to_object_id) for t in r.to} for r in res.results}
    assert got[c1.id] == {co1.id, co2.id}
    assert got[c2.id] == {co2.id}
    assert got.get(lonely.id, set()) == set()
    for r in res.results:
        for t in r.to:
            assert {a.type_id for a in t.association_types} == {279}


def test_batch_read_with_a_missing_record_is_207(client):
    c = contact(client)
    res, status, _ = client.crm.associations.v4.batch_api.get_page_with_http_info(
        "contacts",
        "companies",
        BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[
                PublicFetchAssociationsBatchRequest(id=c.id),
                PublicFetchAssociationsBatchRequest(id="987654321"),
            ]
        ),
    )
    assert status == 207
    assert [r._from.id for r in res.results] == [c.id]
    assert res.errors[0].context["ids"] == ["987654321"]


def test_batch_archive_answers_204(client):
    c = contact(client)
    co1, co2, co3 = (company(client, n) for n in ("A", "B", "C"))
    for co in (co1, co2, co3):
        client.crm.associations.v4.basic_api.create_default("contacts", c.id, "companies", co.id)
    _, status, _ = client.crm.associations.v4.batch_api.archive_with_http_info(
        "contacts",
        "companies",
        BatchInputPublicAssociationMultiArchive(
            inputs=[
                PublicAssociationMultiArchive(
                    _from=PublicObjectId(id=c.id), to=[PublicObjectId(id=co1.id), PublicObjectId(id=co3.id)]
                )
            ]
        ),
    )
    assert status == 204
    assert set(associated(client, "contacts", c.id, "companies")) == {co2.id}


def test_batch_associate_default_answers_200(client):
    contacts = [contact(client) for _ in range(2)]
    co = company(client)
    res, status, _ = client.crm.associations.v4.batch_api.create_default_with_http_info(
        "contacts",
        "companies",
        BatchInputPublicDefaultAssociationMultiPost(
            inputs=[
                PublicDefaultAssociationMultiPost(_from=PublicObjectId(id=c.id), to=PublicObjectId(id=co.id))
                for c in contacts
            ]
        ),
    )
    assert status == 200
    got = {(r._from.id, r.to.id, r.association_spec.association_type_id) for r in res.results}
    assert got >= {(c.id, co.id, 279) for c in contacts}
    assert set(associated(client, "companies", co.id, "contacts")) == {c.id for c in contacts}


def test_batch_archive_labels_keeps_other_types(client):
    c, co = contact(client), company(client)
    client.crm.associations.v4.basic_api.create("contacts", c.id, "companies", co.id, [spec(1), spec(279)])
    _, status, _ = client.crm.associations.v4.batch_api.archive_labels_with_http_info(
        "contacts",
        "companies",
        BatchInputPublicAssociationMultiPost(
            inputs=[
                PublicAssociationMultiPost(
                    _from=PublicObjectId(id=c.id), to=PublicObjectId(id=co.id), types=[spec(1)]
                )
            ]
        ),
    )
    assert status == 204
    assert associated(client, "contacts", c.id, "companies") == {co.id: {279}}


# v4 labels


def test_labels_get_all_lists_hubspot_defined_types(client):
    res = client.crm.associations.v4.schema.definitions_api.get_all("contacts", "companies")
    by_id = {t.type_id: t for t in res.results}
    assert by_id[1].label == "Primary"
    assert by_id[1].category == "HUBSPOT_DEFINED"
    assert 279 in by_id


def test_label_lifecycle(client):
    defs = client.crm.associations.v4.schema.definitions_api
    res = defs.create(
        "contacts",
        "companies",
        PublicAssociationDefinitionCreateRequest(label="Billing contact", name="billing_contact", inverse_label="Billed company"),
    )
    [made] = [t for t in res.results if t.label == "Billing contact"]
    assert made.category == "USER_DEFINED"
    # The inverse label exists on the other direction.
    inverse = defs.get_all("companies", "contacts").results
    assert "Billed company" in {t.label for t in inverse}

    c, co = contact(client), company(client)
    pair = client.crm.associations.v4.basic_api.create(
        "contacts", c.id, "companies", co.id, [spec(made.type_id, "USER_DEFINED")]
    )
    assert pair.labels == ["Billing contact"]
    page = client.crm.associations.v4.basic_api.get_page("contacts", c.id, "companies")
    assert {(t.type_id, t.label) for t in page.results[0].association_types} >= {
        (made.type_id, "Billing contact")
    }

    _, status, _ = defs.update_with_http_info(
        "contacts",
        "companies",
        PublicAssociationDefinitionUpdateRequest(association_type_id=made.type_id, label="Invoice contact"),
    )
    assert status == 204
    labels = {t.type_id: t.label for t in defs.get_all("contacts", "companies").results}
    assert labels[made.type_id] == "Invoice contact"

    client.crm.associations.v4.basic_api.archive("contacts", c.id, "companies", co.id)
    _, status, _ = defs.remove_with_http_info("contacts", "companies", made.type_id)
    assert status == 204
    assert made.type_id not in {t.type_id for t in defs.get_all("contacts", "companies").results}


# v3 batch


def test_v3_types(client):
    res = client.crm.associations.schema.types_api.get_all("contacts", "companies")
    names = {t.name for t in res.results}
    assert "contact_to_company" in names
    assert all(t.id for t in res.results)


def test_v3_batch_create_read_archive(client):
    contacts = [contact(client) for _ in range(2)]
    co = company(client)
    created, status, _ = client.crm.associations.batch_api.create_with_http_info(
        "contacts",
        "companies",
        BatchInputPublicAssociation(
            inputs=[
                PublicAssociation(_from=V3ObjectId(id=c.id), to=V3ObjectId(id=co.id), type="contact_to_company")
                for c in contacts
            ]
        ),
    )
    assert status == 201
    assert created.status == "COMPLETE"
    assert sorted(r._from.id for r in created.results) == sorted(c.id for c in contacts)
    assert {r.to.id for r in created.results} == {co.id}
    assert {r.type for r in created.results} == {"contact_to_company"}

    read, status, _ = client.crm.associations.batch_api.read_with_http_info(
        "contacts", "companies", BatchInputPublicObjectId(inputs=[V3ObjectId(id=c.id) for c in contacts])
    )
    assert status == 200
    got = {r._from.id: {t.id for t in r.to} for r in read.results}
    assert got == {c.id: {co.id} for c in contacts}
    # The v4 view shows the same association.
    assert set(associated(client, "companies", co.id, "contacts")) == {c.id for c in contacts}

    _, status, _ = client.crm.associations.batch_api.archive_with_http_info(
        "contacts",
        "companies",
        BatchInputPublicAssociation(
            inputs=[
                PublicAssociation(_from=V3ObjectId(id=contacts[0].id), to=V3ObjectId(id=co.id), type="contact_to_company")
            ]
        ),
    )
    assert status == 204
    assert set(associated(client, "companies", co.id, "contacts")) == {contacts[1].id}


def test_v3_batch_read_with_a_missing_record_is_207(client):
    c = contact(client)
    read, status, _ = client.crm.associations.batch_api.read_with_http_info(
        "contacts", "companies", BatchInputPublicObjectId(inputs=[V3ObjectId(id=c.id), V3ObjectId(id="987654321")])
    )
    assert status == 207
    assert read.num_errors == 1
    assert "987654321" in read.errors[0].context["ids"]


def test_create_record_with_associations_across_types(client):
    co = company(client)
    c = contact(client)
    deal = create(
        client,
        "deals",
        SAMPLE["deals"](),
        associations=[
            PublicAssociationsForObject(
                to=ObjectsObjectId(id=co.id),
                types=[ObjectsAssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=341)],
            ),
            PublicAssociationsForObject(
                to=ObjectsObjectId(id=c.id),
                types=[ObjectsAssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=3)],
            ),
        ],
    )
    assert associated(client, "deals", deal.id, "companies") == {co.id: {341}}
    assert associated(client, "deals", deal.id, "contacts") == {c.id: {3}}
    assert associated(client, "contacts", c.id, "deals") == {deal.id: {4}}


def test_batch_created_records_can_be_associated_in_bulk(client):
    made = batch_create(client, "tickets", [SAMPLE["tickets"]() for _ in range(3)])
    c = contact(client)
    client.crm.associations.v4.batch_api.create_default(
        "tickets",
        "contacts",
        BatchInputPublicDefaultAssociationMultiPost(
            inputs=[
                PublicDefaultAssociationMultiPost(_from=PublicObjectId(id=t.id), to=PublicObjectId(id=c.id))
                for t in made
            ]
        ),
    )
    assert associated(client, "contacts", c.id, "tickets") == {t.id: {15} for t in made}
