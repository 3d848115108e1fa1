"""Line items (made from a product, on a deal, their amount computed) and leads, as standard
objects through the generated clients' `crm.line_items` and the generic objects API."""

import pytest
from hubspot.crm.line_items import SimplePublicObjectInput, SimplePublicObjectInputForCreate
from hubspot.crm.line_items.exceptions import ApiException

from helpers import create, error_body


def test_a_line_item_from_a_product_on_a_deal(client):
    product = create(client, "products", {"name": "Widget", "price": "12.50", "hs_sku": "W-1"})
    deal = create(client, "deals", {"dealname": "Widgets for Acme", "dealstage": "qualifiedtobuy"})
    item = client.crm.line_items.basic_api.create(
        SimplePublicObjectInputForCreate(
            properties={"hs_product_id": product.id, "quantity": "3"},
            associations=[
                {"to": {"id": deal.id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 20}]}
            ],
        )
    )
    p = client.crm.line_items.basic_api.get_by_id(item.id, properties=["name", "price", "quantity", "amount", "hs_sku"]).properties
    assert p["name"] == "Widget" and float(p["price"]) == 12.5
    assert p["hs_sku"] == "W-1"
    assert float(p["amount"]) == 37.5
    # The amount follows price and quantity, and cannot be set.
    client.crm.line_items.basic_api.update(item.id, SimplePublicObjectInput(properties={"quantity": "4"}))
    p = client.crm.line_items.basic_api.get_by_id(item.id, properties=["amount"]).properties
    assert float(p["amount"]) == 50.0
    with pytest.raises(ApiException) as e:
        client.crm.line_items.basic_api.update(item.id, SimplePublicObjectInput(properties={"amount": "1"}))
    assert e.value.status == 400
    # The deal lists its line items, by v3 read and by v4 batch read.
    read = client.crm.deals.basic_api.get_by_id(deal.id, associations=["line_items"])
    assert [a.id for a in read.associations["line_items"].results] == [item.id]
    from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest, PublicFetchAssociationsBatchRequest

    page = client.crm.associations.v4.batch_api.get_page(
        "deal", "line_items", BatchInputPublicFetchAssociationsBatchRequest(inputs=[PublicFetchAssociationsBatchRequest(id=deal.id)])
    )
    assert [t.to_object_id for t in page.results[0].to] == [item.id]
    # A product id that is not a product is refused.
    with pytest.raises(ApiException) as e:
        client.crm.line_items.basic_api.create(SimplePublicObjectInputForCreate(properties={"hs_product_id": "999999"}))
    assert e.value.status == 400 and "hs_product_id" in error_body(e.value)["message"]


def test_leads_are_a_standard_object(client):
    names = {p.name for p in client.crm.properties.core_api.get_all("leads").results}
    assert {"hs_lead_name", "hs_lead_type", "hs_lead_label"} <= names
    lead = create(client, "leads", {"hs_lead_name": "Acme expansion", "hs_lead_type": "UPSELL"})
    read = client.crm.objects.basic_api.get_by_id("leads", lead.id, properties=["hs_lead_name", "hs_lead_type"])
    assert read.properties["hs_lead_type"] == "UPSELL"
    assert client.crm.objects.basic_api.get_by_id("0-136", lead.id).id == lead.id
