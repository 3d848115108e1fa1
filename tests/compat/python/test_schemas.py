"""`crm.schemas.core_api`: custom object schemas, and records of a custom object."""

import pytest
from hubspot.crm.objects import Filter, FilterGroup, PublicObjectSearchRequest, SimplePublicObjectInput
from hubspot.crm.objects.exceptions import ApiException as ObjectsApiException
from hubspot.crm.schemas import (
    AssociationDefinitionEgg,
    ObjectSchemaEgg,
    ObjectTypeDefinitionLabels,
    ObjectTypeDefinitionPatch,
    ObjectTypePropertyCreate,
)
from hubspot.crm.schemas.exceptions import ApiException, NotFoundException

from helpers import create, create_custom_object, unique


def test_create_answers_201_with_the_schema(account):
    client = account.client
    name = unique("car")
    egg = ObjectSchemaEgg(
        name=name,
        labels=ObjectTypeDefinitionLabels(singular="Car", plural="Cars"),
        primary_display_property="model",
        required_properties=["model"],
        searchable_properties=["model"],
        secondary_display_properties=[],
        properties=[
            ObjectTypePropertyCreate(name="model", label="Model", type="string", field_type="text"),
            ObjectTypePropertyCreate(name="year", label="Year", type="number", field_type="number"),
        ],
        associated_objects=["CONTACT"],
    )
    schema, status, _ = client.crm.schemas.core_api.create_with_http_info(egg)
    assert status == 201
    assert schema.name == name
    assert schema.object_type_id.startswith("2-")
    assert schema.object_type_id == f"2-{schema.id}"
    assert schema.fully_qualified_name == f"p{account.id}_{name}"
    assert (schema.labels.singular, schema.labels.plural) == ("Car", "Cars")
    assert schema.primary_display_property == "model"
    assert schema.required_properties == ["model"]
    props = {p.name: p for p in schema.properties}
    assert props["model"].type == "string"
    assert props["year"].type == "number"
    assert "hs_object_id" in props
    assert "0-1" in {a.to_object_type_id for a in schema.associations}
    assert all(a.from_object_type_id == schema.object_type_id for a in schema.associations)


def test_get_by_object_type_id_and_fully_qualified_name(client):
    schema = create_custom_object(client)
    for key in (schema.object_type_id, schema.fully_qualified_name):
        got = client.crm.schemas.core_api.get_by_id(key)
        assert got.id == schema.id
        assert got.name == schema.name
        assert {p.name for p in got.properties} >= {"model", "year", "vin"}


def test_get_all_lists_schemas(client):
    a = create_custom_object(client)
    b = create_custom_object(client)
    res = client.crm.schemas.core_api.get_all()
    assert {s.object_type_id for s in res.results} == {a.object_type_id, b.object_type_id}


def test_update_returns_the_definition(client):
    schema = create_custom_object(client)
    updated, status, _ = client.crm.schemas.core_api.update_with_http_info(
        schema.object_type_id,
        ObjectTypeDefinitionPatch(
            labels=ObjectTypeDefinitionLabels(singular="Vehicle", plural="Vehicles"),
            description="Everything with wheels",
            searchable_properties=["model", "vin"],
        ),
    )
    assert status == 200
    assert updated.id == schema.id
    assert (updated.labels.singular, updated.labels.plural) == ("Vehicle", "Vehicles")
    assert updated.description == "Everything with wheels"
    got = client.crm.schemas.core_api.get_by_id(schema.object_type_id)
    assert got.labels.plural == "Vehicles"
    assert got.searchable_properties == ["model", "vin"]
    assert got.name == schema.name


def test_create_association_answers_201(client):
    schema = create_custom_object(client, associated=["CONTACT"])
    assoc, status, _ = client.crm.schemas.core_api.create_association_with_http_info(
        schema.object_type_id,
        AssociationDefinitionEgg(
            from_object_type_id=schema.object_type_id, to_object_type_id="0-2", name="car_to_company"
        ),
    )
    assert status == 201
    assert assoc.from_object_type_id == schema.object_type_id
    assert assoc.to_object_type_id == "0-2"
    assert assoc.id
    got = client.crm.schemas.core_api.get_by_id(schema.object_type_id)
    assert "0-2" in {a.to_object_type_id for a in got.associations}

    # The new association definition is usable for records.
    car = create(client, schema.object_type_id, {"model": "Beetle"})
    company = create(client, "companies", {"name": "VW"})
    client.crm.associations.v4.basic_api.create_default(
        schema.object_type_id, car.id, "companies", company.id
    )
    page = client.crm.associations.v4.basic_api.get_page(schema.object_type_id, car.id, "companies")
    assert [str(r.to_object_id) for r in page.results] == [company.id]


def test_archive_association_answers_204(client):
    schema = create_custom_object(client, associated=["CONTACT"])
    assoc = client.crm.schemas.core_api.create_association(
        schema.object_type_id,
        AssociationDefinitionEgg(
            from_object_type_id=schema.object_type_id, to_object_type_id="0-2", name="car_to_company"
        ),
    )
    _, status, _ = client.crm.schemas.core_api.archive_association_with_http_info(
        schema.object_type_id, assoc.id
    )
    assert status == 204
    got = client.crm.schemas.core_api.get_by_id(schema.object_type_id)
    assert "0-2" not in {a.to_object_type_id for a in got.associations}
    assert "0-1" in {a.to_object_type_id for a in got.associations}


def test_archive_answers_204(client):
    schema = create_custom_object(client)
    _, status, _ = client.crm.schemas.core_api.archive_with_http_info(schema.object_type_id)
    assert status == 204
    with pytest.raises(NotFoundException):
        client.crm.schemas.core_api.get_by_id(schema.object_type_id)
    assert client.crm.schemas.core_api.get_all().results == []
    archived = client.crm.schemas.core_api.get_all(archived=True).results
    assert [s.object_type_id for s in archived] == [schema.object_type_id]


def test_schema_with_records_cannot_be_archived(client):
    schema = create_custom_object(client)
    create(client, schema.object_type_id, {"model": "Model T"})
    with pytest.raises(ApiException) as e:
        client.crm.schemas.core_api.archive(schema.object_type_id)
    assert 400 <= e.value.status < 500
    assert client.crm.schemas.core_api.get_by_id(schema.object_type_id).id == schema.id


def test_duplicate_name_is_rejected(client):
    schema = create_custom_object(client)
    with pytest.raises(ApiException) as e:
        create_custom_object(client, name=schema.name)
    assert e.value.status in (400, 409)


def test_custom_object_records_by_id_and_fully_qualified_name(client):
    schema = create_custom_object(client)
    car = create(client, schema.object_type_id, {"model": "Beetle", "year": "1968", "vin": "VIN1"})
    assert car.properties["model"] == "Beetle"
    assert car.properties["hs_object_id"] == car.id
    assert car.properties["hs_createdate"]
    for key in (schema.object_type_id, schema.fully_qualified_name, f"p_{schema.name}"):
        got = client.crm.objects.basic_api.get_by_id(key, car.id, properties=["model", "year"])
        assert (got.properties["model"], got.properties["year"]) == ("Beetle", "1968")
    by_vin = client.crm.objects.basic_api.get_by_id(schema.object_type_id, "VIN1", id_property="vin")
    assert by_vin.id == car.id
    client.crm.objects.basic_api.update(
        schema.fully_qualified_name, car.id, SimplePublicObjectInput(properties={"year": "1969"})
    )
    res = client.crm.objects.search_api.do_search(
        schema.object_type_id,
        PublicObjectSearchRequest(
            filter_groups=[FilterGroup(filters=[Filter(property_name="year", operator="GTE", value="1969")])],
            properties=["model", "year"],
        ),
    )
    assert res.total == 1
    assert res.results[0].properties["year"] == "1969"


def test_custom_object_query_uses_searchable_properties(client):
    schema = create_custom_object(client)
    beetle = create(client, schema.object_type_id, {"model": "Beetle", "year": "1968"})
    create(client, schema.object_type_id, {"model": "Golf", "year": "1974"})
    res = client.crm.objects.search_api.do_search(
        schema.object_type_id, PublicObjectSearchRequest(query="beetle", properties=["model"])
    )
    assert res.total == 1
    assert [r.id for r in res.results] == [beetle.id]


def test_required_property_is_enforced(client):
    schema = create_custom_object(client)
    with pytest.raises(ObjectsApiException) as e:
        create(client, schema.object_type_id, {"year": "2000"})
    assert e.value.status == 400


def test_invalid_name_is_400(client):
    with pytest.raises(ApiException) as e:
        create_custom_object(client, name="1 car")
    assert e.value.status == 400
    assert client.crm.schemas.core_api.get_all().results == []


def test_unknown_schema_is_404(client):
    with pytest.raises(NotFoundException):
        client.crm.schemas.core_api.get_by_id("2-999999")
