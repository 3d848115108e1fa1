"""`crm.objects.batch_api`: read, create, update, upsert, archive."""

import pytest
from hubspot.crm.objects import (
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchInputSimplePublicObjectId,
    BatchReadInputSimplePublicObjectId,
    SimplePublicObjectBatchInput,
    SimplePublicObjectBatchInputForCreate,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
    SimplePublicObjectInput,
)
from hubspot.crm.objects.exceptions import ApiException, NotFoundException

from helpers import batch_create, create, unique


def email():
    return f"{unique('b')}@example.com"


def read_input(keys, properties=None, history=None, id_property=None):
    return BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=k) for k in keys],
        properties=properties or [],
        properties_with_history=history or [],
        id_property=id_property,
    )


def test_batch_create_answers_201_and_echoes_trace_ids(client):
    emails = [email() for _ in range(3)]
    body = BatchInputSimplePublicObjectBatchInputForCreate(
        inputs=[
            SimplePublicObjectBatchInputForCreate(
                properties={"email": e, "firstname": f"N{i}"},
                associations=[],
                object_write_trace_id=f"trace-{i}",
            )
            for i, e in enumerate(emails)
        ]
    )
    res, status, _ = client.crm.objects.batch_api.create_with_http_info("contacts", body)
    assert status == 201
    assert res.status == "COMPLETE"
    assert res.started_at <= res.completed_at
    assert len(res.results) == 3
    by_email = {r.properties["email"]: r for r in res.results}
    assert set(by_email) == set(emails)
    for i, e in enumerate(emails):
        r = by_email[e]
        assert r.properties["firstname"] == f"N{i}"
        assert r.object_write_trace_id == f"trace-{i}"
        assert r.properties["hs_object_id"] == r.id
    assert len({r.id for r in res.results}) == 3
    listed = client.crm.objects.basic_api.get_page("contacts", limit=100)
    assert {r.id for r in listed.results} == {r.id for r in res.results}


def test_batch_read_by_ids_with_properties(client):
    made = batch_create(
        client, "contacts", [{"email": email(), "city": c} for c in ("Oslo", "Rome", "Lima")]
    )
    wanted = [made[2].id, made[0].id]
    res, status, _ = client.crm.objects.batch_api.read_with_http_info(
        "contacts", read_input(wanted, properties=["city"])
    )
    assert status == 200
    assert res.status == "COMPLETE"
    got = {r.id: r.properties["city"] for r in res.results}
    assert got == {made[2].id: made[2].properties["city"], made[0].id: made[0].properties["city"]}
    assert all("firstname" not in r.properties for r in res.results)


def test_batch_read_by_email(client):
    made = batch_create(client, "contacts", [{"email": email()} for _ in range(2)])
    keys = [m.properties["email"] for m in made]
    res = client.crm.objects.batch_api.read(
        "contacts", read_input(keys, properties=["email"], id_property="email")
    )
    assert {r.id for r in res.results} == {m.id for m in made}
    assert {r.properties["email"] for r in res.results} == set(keys)


def test_batch_read_with_history(client):
    made = create(client, "contacts", {"email": email(), "jobtitle": "Clerk"})
    client.crm.objects.basic_api.update(
        "contacts", made.id, SimplePublicObjectInput(properties={"jobtitle": "Manager"})
    )
    res = client.crm.objects.batch_api.read(
        "contacts", read_input([made.id], properties=["jobtitle"], history=["jobtitle"])
    )
    [r] = res.results
    assert r.properties["jobtitle"] == "Manager"
    assert [h.value for h in r.properties_with_history["jobtitle"]] == ["Manager", "Clerk"]


def test_batch_read_with_a_missing_id_is_207(client):
    made = create(client, "contacts", {"email": email()})
    missing = "999999999"
    res, status, _ = client.crm.objects.batch_api.read_with_http_info(
        "contacts", read_input([made.id, missing], properties=["email"])
    )
    assert status == 207
    assert [r.id for r in res.results] == [made.id]
    assert res.num_errors == 1
    [err] = res.errors
    assert err.category == "OBJECT_NOT_FOUND"
    assert err.status == "error"
    assert err.message
    assert err.context["ids"] == [missing]


def test_batch_read_with_history_takes_at_most_50_inputs(client):
    made = batch_create(client, "contacts", [{"email": email()} for _ in range(51)])
    with pytest.raises(ApiException) as e:
        client.crm.objects.batch_api.read(
            "contacts", read_input([m.id for m in made], properties=["email"], history=["email"])
        )
    assert e.value.status == 400
    res = client.crm.objects.batch_api.read(
        "contacts", read_input([m.id for m in made[:50]], properties=["email"], history=["email"])
    )
    assert len(res.results) == 50


def test_batch_read_archived(client):
    made = batch_create(client, "contacts", [{"email": email()} for _ in range(2)])
    client.crm.objects.basic_api.archive("contacts", made[0].id)
    res = client.crm.objects.batch_api.read(
        "contacts", read_input([made[0].id], properties=["email"]), archived=True
    )
    [r] = res.results
    assert r.id == made[0].id
    assert r.archived is True


def test_batch_update_answers_200(client):
    made = batch_create(client, "contacts", [{"email": email(), "city": "Oslo"} for _ in range(3)])
    body = BatchInputSimplePublicObjectBatchInput(
        inputs=[
            SimplePublicObjectBatchInput(
                id=m.id, properties={"city": f"City {i}"}, object_write_trace_id=f"u{i}"
            )
            for i, m in enumerate(made[:2])
        ]
    )
    res, status, _ = client.crm.objects.batch_api.update_with_http_info("contacts", body)
    assert status == 200
    assert {r.id: r.properties["city"] for r in res.results} == {
        made[0].id: "City 0",
        made[1].id: "City 1",
    }
    assert {r.id: r.object_write_trace_id for r in res.results} == {made[0].id: "u0", made[1].id: "u1"}
    after = client.crm.objects.batch_api.read(
        "contacts", read_input([m.id for m in made], properties=["city"])
    )
    assert {r.id: r.properties["city"] for r in after.results} == {
        made[0].id: "City 0",
        made[1].id: "City 1",
        made[2].id: "Oslo",
    }


def test_batch_update_by_email(client):
    e = email()
    made = create(client, "contacts", {"email": e})
    body = BatchInputSimplePublicObjectBatchInput(
        inputs=[SimplePublicObjectBatchInput(id=e, id_property="email", properties={"lastname": "Byron"})]
    )
    res = client.crm.objects.batch_api.update("contacts", body)
    assert [r.id for r in res.results] == [made.id]
    assert res.results[0].properties["lastname"] == "Byron"


def test_batch_update_with_a_missing_id_is_207(client):
    made = create(client, "contacts", {"email": email()})
    body = BatchInputSimplePublicObjectBatchInput(
        inputs=[
            SimplePublicObjectBatchInput(id=made.id, properties={"city": "Kyiv"}),
            SimplePublicObjectBatchInput(id="999999999", properties={"city": "Nowhere"}),
        ]
    )
    res, status, _ = client.crm.objects.batch_api.update_with_http_info("contacts", body)
    assert status == 207
    assert [r.id for r in res.results] == [made.id]
    assert res.errors[0].context["ids"] == ["999999999"]


def test_batch_upsert_creates_and_updates(client):
    existing_email = email()
    existing = create(client, "contacts", {"email": existing_email, "firstname": "Old"})
    new_email = email()
    body = BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[
            SimplePublicObjectBatchInputUpsert(
                id=existing_email, id_property="email", properties={"firstname": "Updated"}
            ),
            SimplePublicObjectBatchInputUpsert(
                id=new_email,
                id_property="email",
                properties={"firstname": "Created"},
                object_write_trace_id="new-one",
            ),
        ]
    )
    res, status, _ = client.crm.objects.batch_api.upsert_with_http_info("contacts", body)
    assert status == 200
    by_email = {r.properties["email"]: r for r in res.results}
    assert set(by_email) == {existing_email, new_email}
    assert by_email[existing_email].id == existing.id
    assert by_email[existing_email].new is False
    assert by_email[existing_email].properties["firstname"] == "Updated"
    assert by_email[new_email].new is True
    assert by_email[new_email].object_write_trace_id == "new-one"
    assert by_email[new_email].properties["firstname"] == "Created"
    assert by_email[new_email].id != existing.id
    listed = client.crm.objects.basic_api.get_page("contacts", limit=100)
    assert len(listed.results) == 2


def test_batch_upsert_on_custom_unique_property(client):
    from hubspot.crm.properties import PropertyCreate

    client.crm.properties.core_api.create(
        "companies",
        PropertyCreate(
            name="erp_id",
            label="ERP id",
            type="string",
            field_type="text",
            group_name="companyinformation",
            has_unique_value=True,
        ),
    )
    first = client.crm.objects.batch_api.upsert(
        "companies",
        BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                SimplePublicObjectBatchInputUpsert(
                    id="ERP-1", id_property="erp_id", properties={"name": "Initech"}
                )
            ]
        ),
    )
    assert first.results[0].new is True
    assert first.results[0].properties["erp_id"] == "ERP-1"
    second = client.crm.objects.batch_api.upsert(
        "companies",
        BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                SimplePublicObjectBatchInputUpsert(
                    id="ERP-1", id_property="erp_id", properties={"name": "Initech LLC"}
                )
            ]
        ),
    )
    assert second.results[0].new is False
    assert second.results[0].id == first.results[0].id
    got = client.crm.objects.basic_api.get_by_id("companies", "ERP-1", id_property="erp_id")
    assert got.properties["name"] == "Initech LLC"


def test_batch_archive_answers_204(client):
    made = batch_create(client, "contacts", [{"email": email()} for _ in range(3)])
    body = BatchInputSimplePublicObjectId(inputs=[SimplePublicObjectId(id=m.id) for m in made[:2]])
    _, status, _ = client.crm.objects.batch_api.archive_with_http_info("contacts", body)
    assert status == 204
    for m in made[:2]:
        with pytest.raises(NotFoundException):
            client.crm.objects.basic_api.get_by_id("contacts", m.id)
    listed = client.crm.objects.basic_api.get_page("contacts")
    assert [r.id for r in listed.results] == [made[2].id]
    archived = client.crm.objects.basic_api.get_page("contacts", archived=True)
    assert {r.id for r in archived.results} == {made[0].id, made[1].id}


@pytest.mark.parametrize(
    "object_type,props",
    [
        ("companies", {"name": "Globex"}),
        ("deals", {"dealname": "Renewal", "pipeline": "default", "dealstage": "qualifiedtobuy"}),
        ("tickets", {"subject": "Printer", "hs_pipeline": "0", "hs_pipeline_stage": "1"}),
        ("products", {"name": "Widget", "price": "12.5"}),
        ("tasks", {"hs_task_subject": "Call back", "hs_timestamp": "2024-05-01T12:00:00.000Z"}),
        ("notes", {"hs_note_body": "Met at the fair", "hs_timestamp": "2024-05-01T12:00:00.000Z"}),
    ],
)
def test_batch_round_trip_on_other_objects(client, object_type, props):
    made = batch_create(client, object_type, [props, props])
    res = client.crm.objects.batch_api.read(
        object_type, read_input([m.id for m in made], properties=list(props))
    )
    assert {r.id for r in res.results} == {m.id for m in made}
    for r in res.results:
        for k, v in props.items():
            if k == "hs_timestamp":
                continue
            assert r.properties[k] == v
    client.crm.objects.batch_api.archive(
        object_type, BatchInputSimplePublicObjectId(inputs=[SimplePublicObjectId(id=made[0].id)])
    )
    assert [r.id for r in client.crm.objects.basic_api.get_page(object_type).results] == [made[1].id]
