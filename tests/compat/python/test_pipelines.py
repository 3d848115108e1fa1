"""`crm.pipelines`: the deal and ticket pipelines every account starts with, new and changed
pipelines and stages as the generated client sends them, what deals may hold, and the older
`/crm-pipelines/v1` answer."""

import pytest
from hubspot.crm.deals import SimplePublicObjectInput
from hubspot.crm.pipelines import PipelineInput, PipelinePatchInput, PipelineStageInput, PipelineStagePatchInput
from hubspot.crm.deals.exceptions import ApiException as DealsApiException
from hubspot.crm.objects.exceptions import ApiException as ObjectsApiException
from hubspot.crm.pipelines.exceptions import ApiException as PipelinesApiException
from hubspot.crm.properties.exceptions import ApiException as PropertiesApiException

from helpers import create, create_custom_object, error_body

# Each API of the generated client raises its own ApiException.
ApiException = (DealsApiException, ObjectsApiException, PipelinesApiException, PropertiesApiException)


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


def test_unknown_pipeline_is_404(client):
    with pytest.raises(ApiException) as e:
        client.crm.pipelines.pipelines_api.get_by_id("deals", "nope")
    assert e.value.status == 404
    with pytest.raises(ApiException) as e:
        client.crm.pipelines.pipeline_stages_api.get_by_id("deals", "default", "nope")
    assert e.value.status == 404


def renewals(client):
    """Creates a second deal pipeline of two stages, as the generated client sends it."""
    return client.crm.pipelines.pipelines_api.create(
        "deals",
        PipelineInput(
            label="Renewals",
            display_order=1,
            stages=[
                PipelineStageInput(label="Up for renewal", display_order=0, metadata={"probability": "0.5"}),
                PipelineStageInput(label="Renewed", display_order=1, metadata={"probability": "1.0"}),
            ],
        ),
    )


def test_a_new_pipeline_with_its_stages(client):
    created = renewals(client)
    assert created.label == "Renewals" and created.id not in ("default", "")
    assert [s.label for s in created.stages] == ["Up for renewal", "Renewed"]
    renewed = created.stages[1]
    assert renewed.metadata == {"probability": "1.0", "isClosed": "true"}
    listed = client.crm.pipelines.pipelines_api.get_all("deals").results
    assert [p.id for p in listed] == ["default", created.id]
    # The stages are options of the deal stage property, so the properties API agrees.
    stage_prop = client.crm.properties.core_api.get_by_name("deals", "dealstage")
    assert {"Up for renewal", "Renewed"} <= {o.label for o in stage_prop.options}
    pipeline_prop = client.crm.properties.core_api.get_by_name("deals", "pipeline")
    assert created.id in [o.value for o in pipeline_prop.options]
    # Labels are unique; a deal stage needs a probability.
    with pytest.raises(ApiException) as e:
        renewals(client)
    assert e.value.status == 400 and "already exists" in error_body(e.value)["message"]
    with pytest.raises(ApiException) as e:
        client.crm.pipelines.pipelines_api.create(
            "deals", PipelineInput(label="No odds", display_order=2, stages=[PipelineStageInput(label="A", display_order=0, metadata={})])
        )
    assert e.value.status == 400 and "probability" in error_body(e.value)["message"]


def test_a_deal_stays_in_its_pipelines_stages(client):
    created = renewals(client)
    up = created.stages[0].id
    # A stage given without a pipeline puts the deal in the stage's pipeline.
    deal = create(client, "deals", {"dealname": "Renewal 2027", "dealstage": up})
    assert deal.properties["pipeline"] == created.id
    # A stage of another pipeline is refused, on create and on update.
    with pytest.raises(ApiException) as e:
        create(client, "deals", {"dealname": "Mixed", "pipeline": "default", "dealstage": up})
    assert e.value.status == 400 and "not a valid stage" in error_body(e.value)["message"]
    with pytest.raises(ApiException) as e:
        client.crm.deals.basic_api.update(deal.id, SimplePublicObjectInput(properties={"dealstage": "closedwon"}))
    assert e.value.status == 400
    # Moving pipeline and stage together is fine.
    moved = client.crm.deals.basic_api.update(
        deal.id, SimplePublicObjectInput(properties={"pipeline": "default", "dealstage": "closedwon"})
    )
    assert moved.properties["dealstage"] == "closedwon"


def test_a_stage_or_pipeline_in_use_cannot_be_archived(client):
    created = renewals(client)
    up, renewed = created.stages[0].id, created.stages[1].id
    deal = create(client, "deals", {"dealname": "Keeps it", "dealstage": up})
    stages = client.crm.pipelines.pipeline_stages_api
    with pytest.raises(ApiException) as e:
        stages.archive("deals", created.id, up)
    assert e.value.status == 400
    assert "1 deal is in stage" in error_body(e.value)["message"]
    with pytest.raises(ApiException) as e:
        client.crm.pipelines.pipelines_api.archive("deals", created.id)
    assert e.value.status == 400
    # A deal in the recycle bin still holds its stage.
    client.crm.deals.basic_api.archive(deal.id)
    with pytest.raises(ApiException) as e:
        stages.archive("deals", created.id, up)
    assert "recycle bin" in error_body(e.value)["message"]
    with pytest.raises(ApiException) as e:
        client.crm.pipelines.pipelines_api.archive("deals", created.id)
    assert "recycle bin" in error_body(e.value)["message"]
    # What holds no deal goes.
    stages.archive("deals", created.id, renewed)
    assert [s.id for s in stages.get_all("deals", created.id).results] == [up]
    empty = client.crm.pipelines.pipelines_api.create(
        "deals", PipelineInput(label="Empty", display_order=2, stages=[PipelineStageInput(label="Only", display_order=0, metadata={"probability": 0.1})])
    )
    client.crm.pipelines.pipelines_api.archive("deals", empty.id)
    assert [p.id for p in client.crm.pipelines.pipelines_api.get_all("deals").results] == ["default", created.id]
    with pytest.raises(ApiException) as e:
        client.crm.pipelines.pipelines_api.get_by_id("deals", empty.id)
    assert e.value.status == 404
    # A pipeline keeps one stage.
    with pytest.raises(ApiException) as e:
        stages.archive("deals", created.id, up)
    assert e.value.status == 400
    # The pipeline deals without one go in stays.
    with pytest.raises(ApiException) as e:
        client.crm.pipelines.pipelines_api.archive("deals", "default")
    assert e.value.status == 400 and "without a pipeline" in error_body(e.value)["message"]


def test_pipelines_and_stages_change(client):
    created = renewals(client)
    api = client.crm.pipelines.pipelines_api
    patched = api.update("deals", created.id, PipelinePatchInput(label="Renewals 2027", display_order=0))
    assert patched.label == "Renewals 2027"
    assert [p.id for p in api.get_all("deals").results][0] == created.id or patched.display_order == 0
    stage = client.crm.pipelines.pipeline_stages_api.create(
        "deals", created.id, PipelineStageInput(label="Negotiating", display_order=1, metadata={"probability": "0.7"})
    )
    assert stage.metadata["probability"] == "0.7"
    changed = client.crm.pipelines.pipeline_stages_api.update(
        "deals", created.id, stage.id, PipelineStagePatchInput(label="Negotiation", metadata={"probability": "0.75"})
    )
    assert changed.label == "Negotiation" and changed.metadata["probability"] == "0.75"
    # PUT replaces the stages; one named by its label keeps its id.
    replaced = api.replace(
        "deals",
        created.id,
        PipelineInput(
            label="Renewals",
            display_order=1,
            stages=[
                PipelineStageInput(label="Negotiation", display_order=0, metadata={"probability": "0.75"}),
                PipelineStageInput(label="Signed", display_order=1, metadata={"probability": "1.0"}),
            ],
        ),
    )
    assert [s.label for s in replaced.stages] == ["Negotiation", "Signed"]
    assert replaced.stages[0].id == stage.id
    # The deal stage property's options cannot be edited around the pipelines API.
    from hubspot.crm.properties import PropertyUpdate, OptionInput

    with pytest.raises(ApiException) as e:
        client.crm.properties.core_api.update(
            "deals", "dealstage", PropertyUpdate(options=[OptionInput(label="X", value="x", display_order=0, hidden=False)])
        )
    assert e.value.status == 400 and "/crm/v3/pipelines" in error_body(e.value)["message"]


def test_time_in_each_stage_comes_from_the_history(client):
    deal = create(client, "deals", {"dealname": "Timed", "pipeline": "default", "dealstage": "qualifiedtobuy"})
    client.crm.deals.basic_api.update(deal.id, SimplePublicObjectInput(properties={"dealstage": "contractsent"}))
    props = ["hs_date_entered_qualifiedtobuy", "hs_date_exited_qualifiedtobuy", "hs_time_in_qualifiedtobuy",
             "hs_date_entered_contractsent", "hs_date_exited_contractsent", "hs_date_entered_closedwon"]
    read = client.crm.deals.basic_api.get_by_id(deal.id, properties=props)
    p = read.properties
    assert p["hs_date_entered_qualifiedtobuy"] and p["hs_date_exited_qualifiedtobuy"]
    assert p["hs_date_exited_qualifiedtobuy"] == p["hs_date_entered_contractsent"]
    assert int(p["hs_time_in_qualifiedtobuy"]) >= 0
    assert p["hs_date_exited_contractsent"] is None and p["hs_date_entered_closedwon"] is None
    # They are listed as calculated properties, and a search on one says why it cannot.
    names = {x.name: x for x in client.crm.properties.core_api.get_all("deals").results}
    assert names["hs_date_entered_closedwon"].calculated is True
    with pytest.raises(ApiException) as e:
        client.crm.deals.search_api.do_search(
            {"filterGroups": [{"filters": [{"propertyName": "hs_time_in_closedwon", "operator": "HAS_PROPERTY"}]}]}
        )
    assert e.value.status == 400 and "calculated" in error_body(e.value)["message"]


def test_ticket_and_custom_object_pipelines(client):
    support = client.crm.pipelines.pipelines_api.create(
        "tickets",
        PipelineInput(
            label="Escalations",
            display_order=1,
            stages=[
                PipelineStageInput(label="Open", display_order=0, metadata={"ticketState": "OPEN"}),
                PipelineStageInput(label="Done", display_order=1, metadata={"ticketState": "CLOSED"}),
            ],
        ),
    )
    assert support.stages[1].metadata["isClosed"] == "true"
    ticket = create(client, "tickets", {"subject": "Broken", "hs_pipeline_stage": support.stages[0].id})
    assert ticket.properties["hs_pipeline"] == support.id
    schema = create_custom_object(client)
    assert client.crm.pipelines.pipelines_api.get_all(schema.object_type_id).results == []
    made = client.crm.pipelines.pipelines_api.create(
        schema.object_type_id,
        PipelineInput(label="Build", display_order=0, stages=[PipelineStageInput(label="Ordered", display_order=0, metadata={})]),
    )
    car = create(client, schema.object_type_id, {"model": "T", "hs_pipeline_stage": made.stages[0].id})
    assert car.properties["hs_pipeline"] == made.id
    # An object type keeps its last pipeline.
    with pytest.raises(ApiException) as e:
        client.crm.pipelines.pipelines_api.archive(schema.object_type_id, made.id)
    assert e.value.status == 400


def test_the_v1_pipelines_api(client):
    r = client.api_request({"method": "GET", "path": "/crm-pipelines/v1/pipelines/deals"})
    assert r.status_code == 200, r.text
    [p] = r.json()["results"]
    assert p["pipelineId"] == "default" and p["objectType"] == "DEAL" and p["default"] is True
    won = next(s for s in p["stages"] if s["stageId"] == "closedwon")
    assert won["probability"] == 1.0 and won["closedWon"] is True and won["active"] is True
