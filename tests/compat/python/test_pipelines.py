"""`crm.pipelines`: the deal and ticket pipelines every account starts with, read as the
generated client reads them, and the older `/crm-pipelines/v1` answer."""

import pytest
from hubspot.crm.pipelines.exceptions import ApiException

from helpers import create


def test_deal_pipelines_and_stages(client):
    pipelines = client.crm.pipelines.pipelines_api.get_all("deals").results
    assert [p.id for p in pipelines] == ["default"]
    sales = pipelines[0]
    assert sales.label == "Sales Pipeline"
    ids = [s.id for s in sales.stages]
    assert ids[0] == "appointmentscheduled" and "closedwon" in ids and "closedlost" in ids
    won = next(s for s in sales.stages if s.id == "closedwon")
    assert won.metadata == {"isClosed": "true", "probability": "1.0"}
    assert [s.display_order for s in sales.stages] == sorted(s.display_order for s in sales.stages)
    one = client.crm.pipelines.pipelines_api.get_by_id("deals", "default")
    assert [s.id for s in one.stages] == ids
    stages = client.crm.pipelines.pipeline_stages_api.get_all("deals", "default").results
    assert [s.id for s in stages] == ids
    stage = client.crm.pipelines.pipeline_stages_api.get_by_id("deals", "default", "contractsent")
    assert stage.metadata["probability"] == "0.9"
    # Every stage the pipeline lists is one a deal may be created in.
    deal = create(client, "deals", {"dealname": "Pipeline check", "pipeline": sales.id, "dealstage": ids[-1]})
    assert deal.properties["dealstage"] == ids[-1]


def test_ticket_pipelines_carry_the_ticket_state(client):
    [support] = client.crm.pipelines.pipelines_api.get_all("tickets").results
    assert support.id == "0"
    states = {s.id: s.metadata["ticketState"] for s in support.stages}
    assert states["1"] == "OPEN" and states["4"] == "CLOSED"


def test_unknown_pipeline_is_404_and_changes_are_501(client):
    with pytest.raises(ApiException) as e:
        client.crm.pipelines.pipelines_api.get_by_id("deals", "nope")
    assert e.value.status == 404
    r = client.api_request(
        {"method": "POST", "path": "/crm/v3/pipelines/deals", "body": {"label": "New", "displayOrder": 1, "stages": []}}
    )
    assert r.status_code == 501 and r.json()["category"] == "NOT_IMPLEMENTED"


def test_the_v1_pipelines_api(client):
    r = client.api_request({"method": "GET", "path": "/crm-pipelines/v1/pipelines/deals"})
    assert r.status_code == 200, r.text
    [p] = r.json()["results"]
    assert p["pipelineId"] == "default" and p["objectType"] == "DEAL" and p["default"] is True
    won = next(s for s in p["stages"] if s["stageId"] == "closedwon")
    assert won["probability"] == 1.0 and won["closedWon"] is True and won["active"] is True
