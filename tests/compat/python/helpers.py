"""Shared helpers of the compatibility tests."""

import json
import uuid

from hubspot import HubSpot


def make_client(base_url: str, token: str) -> HubSpot:
    """A client in strict mode: every model setter checks required fields and enums. The
    generated APIs take the server's address as `host`; `api_request` (any path, as the
    client's README shows for endpoints it has no API for) as `base_url`."""
    return HubSpot(
        access_token=token, host=base_url, base_url=base_url, client_side_validation=True
    )


def unique(prefix: str = "x") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def error_body(exc) -> dict:
    """The JSON error envelope of an ApiException, checked for the fields the model requires."""
    content_type = (exc.headers or {}).get("Content-Type", "")
    assert "application/json" in content_type, content_type
    body = json.loads(exc.body)
    assert isinstance(body.get("message"), str) and body["message"], body
    assert isinstance(body.get("category"), str) and body["category"], body
    uuid.UUID(body["correlationId"])
    return body


def create_custom_object(client: HubSpot, name: str = "", associated=("CONTACT",)):
    """Creates a custom object schema (`model` text, `year` number, `vin` unique)."""
    from hubspot.crm.schemas import (
        ObjectSchemaEgg,
        ObjectTypeDefinitionLabels,
        ObjectTypePropertyCreate,
    )

    name = name or unique("car")
    egg = ObjectSchemaEgg(
        name=name,
        description="Cars we service",
        labels=ObjectTypeDefinitionLabels(singular="Car", plural="Cars"),
        primary_display_property="model",
        secondary_display_properties=["year"],
        required_properties=["model"],
        searchable_properties=["model"],
        properties=[
            ObjectTypePropertyCreate(
                name="model", label="Model", type="string", field_type="text"
            ),
            ObjectTypePropertyCreate(
                name="year", label="Year", type="number", field_type="number"
            ),
            ObjectTypePropertyCreate(
                name="vin",
                label="VIN",
                type="string",
                field_type="text",
                has_unique_value=True,
            ),
        ],
        associated_objects=list(associated),
    )
    return client.crm.schemas.core_api.create(object_schema_egg=egg)


def create(client: HubSpot, object_type: str, properties: dict, associations=None):
    """Creates one record through `crm.objects.basic_api` and returns it."""
    from hubspot.crm.objects import SimplePublicObjectInputForCreate

    body = SimplePublicObjectInputForCreate(
        properties=properties, associations=associations or []
    )
    record = client.crm.objects.basic_api.create(object_type, body)
    assert record is not None, "create did not answer with its declared status (201)"
    return record


def batch_create(client: HubSpot, object_type: str, properties_list: list):
    """Creates records in batches of 100 and returns them (in the order the server gives)."""
    from hubspot.crm.objects import (
        BatchInputSimplePublicObjectBatchInputForCreate,
        SimplePublicObjectBatchInputForCreate,
    )

    out = []
    for i in range(0, len(properties_list), 100):
        chunk = properties_list[i : i + 100]
        res = client.crm.objects.batch_api.create(
            object_type,
            BatchInputSimplePublicObjectBatchInputForCreate(
                inputs=[
                    SimplePublicObjectBatchInputForCreate(properties=p, associations=[])
                    for p in chunk
                ]
            ),
        )
        assert res is not None, "batch create did not answer with its declared status (201)"
        assert len(res.results) == len(chunk)
        out.extend(res.results)
    return out


def expect_status(status: int, call):
    """Runs `call`, which must raise the client's ApiException (any package) with `status`."""
    try:
        call()
    except Exception as e:  # each generated package has its own exception classes
        if not hasattr(e, "status"):
            raise
        assert e.status == status, (e.status, getattr(e, "body", None))
        return error_body(e)
    raise AssertionError(f"expected an ApiException with status {status}, got a result")
