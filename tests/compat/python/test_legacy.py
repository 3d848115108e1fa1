"""The calls sync tools make beyond the generated APIs, through the client's `api_request`:
top-level search `filters`, `/crm/v3/schemas`, the v2 properties API, correlation ids and the
501 of a path kontor does not serve."""

import json
import uuid

from helpers import batch_create, create_custom_object


def call(client, method, path, body=None):
    options = {"method": method, "path": path}
    if body is not None:
        options["body"] = body
    return client.api_request(options)


def test_top_level_filters_narrow_a_search_as_an_incremental_sync_sends_them(client):
    made = batch_create(
        client, "contacts", [{"email": f"sync{i}@legacy.example", "firstname": "Sync"} for i in range(6)]
    )
    ids = sorted(int(r.id) for r in made)
    cursor = ids[3]
    found, after = [], None
    while True:
        body = {
            "filters": [
                {"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"},
                {"propertyName": "hs_object_id", "operator": "GTE", "value": str(cursor)},
            ],
            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            "limit": 2,
        }
        if after is not None:
            body["after"] = after
        r = call(client, "POST", "/crm/v3/objects/contacts/search", body)
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["total"] == 3
        found += [int(x["id"]) for x in page["results"]]
        after = page.get("paging", {}).get("next", {}).get("after")
        if after is None:
            break
    assert found == ids[3:]


def test_a_search_field_kontor_does_not_know_is_refused(client):
    r = call(client, "POST", "/crm/v3/objects/contacts/search", {"filter": []})
    assert r.status_code == 400
    body = r.json()
    assert body["category"] == "VALIDATION_ERROR" and "filter" in body["message"]
    assert body["correlationId"] == r.headers["X-HubSpot-Correlation-Id"]


def test_schemas_under_the_crm_prefix(client):
    schema = create_custom_object(client)
    r = call(client, "GET", "/crm/v3/schemas")
    assert r.status_code == 200, r.text
    assert [s["objectTypeId"] for s in r.json()["results"]] == [schema.object_type_id]
    one = call(client, "GET", f"/crm/v3/schemas/{schema.object_type_id}").json()
    assert one["name"] == schema.name and one["properties"]


def test_v2_properties_are_a_bare_array(client):
    r = call(client, "GET", "/properties/v2/contacts/properties")
    assert r.status_code == 200, r.text
    props = r.json()
    assert isinstance(props, list)
    by_name = {p["name"]: p for p in props}
    v3 = {p.name for p in client.crm.properties.core_api.get_all("contacts").results}
    assert v3 <= set(by_name)
    stage = by_name["lifecyclestage"]
    assert stage["type"] == "enumeration" and stage["groupName"]
    assert {"label", "value", "displayOrder", "hidden"} <= set(stage["options"][0])
    assert isinstance(stage["createdAt"], int)
    named = call(client, "GET", "/properties/v2/contacts/properties/named/email").json()
    assert named["name"] == "email"
    groups = call(client, "GET", "/properties/v2/contacts/groups").json()
    assert isinstance(groups, list) and {"name", "displayName", "displayOrder"} <= set(groups[0])
    assert {p["groupName"] for p in props} <= {g["name"] for g in groups}


def test_every_answer_has_a_correlation_id_and_unserved_paths_are_501(client):
    ok = call(client, "GET", "/crm/v3/objects/contacts")
    uuid.UUID(ok.headers["X-HubSpot-Correlation-Id"])
    r = call(client, "GET", "/crm/v3/nothing/here")
    assert r.status_code == 501
    body = r.json()
    assert body["category"] == "NOT_IMPLEMENTED" and "/crm/v3/nothing/here" in body["message"]
    assert body["correlationId"] == r.headers["X-HubSpot-Correlation-Id"]


def test_account_info_follows_the_account_to_its_new_region(account):
    c = account.client
    details = call(c, "GET", "/account-info/v3/details").json()
    assert details["portalId"] == account.id
    assert details["dataHostingLocation"] == "na1"
    assert details["accountType"] == "STANDARD" and details["timeZone"] and details["companyCurrency"]
    assert details["utcOffsetMilliseconds"] == 0 and details["uiDomain"]
    me = call(c, "GET", "/integrations/v1/me").json()
    assert me["portalId"] == account.id
    account.server.cli("migration", "run", "--account", str(account.id), "--to", "eu")
    assert call(c, "GET", "/account-info/v3/details").json()["dataHostingLocation"] == "eu1"


def test_daily_api_usage_counts_the_accounts_requests(client):
    def usage():
        r = call(client, "GET", "/account-info/v3/api-usage/daily/private-apps")
        assert r.status_code == 200, r.text
        [day] = r.json()["results"]
        assert day["name"] == "private-apps-api-calls-daily" and day["fetchStatus"] == "SUCCESS"
        assert day["resetsAt"] > day["collectedAt"]
        return day["currentUsage"]

    before = usage()
    for _ in range(3):
        client.crm.contacts.basic_api.get_page()
    # The three reads, and the usage call itself.
    assert usage() == before + 4


def test_hubspot_object_types_kontor_does_not_hold_answer_as_a_portal_without_them(client):
    from hubspot.crm.properties.exceptions import ApiException as PropertiesError

    for name in ("quotes", "quote", "deal_split", "goal_targets", "form", "0-14"):
        try:
            client.crm.properties.core_api.get_all(name)
        except PropertiesError as e:
            assert e.status == 403, (name, e.status, e.body)
            body = json.loads(e.body)
            assert body["category"] == "MISSING_SCOPES"
            assert body["errors"][0]["context"]["requiredGranularScopes"], body
        else:
            raise AssertionError(f"{name}: expected 403")
    r = call(client, "POST", "/crm/v4/associations/deal/quotes/batch/read", {"inputs": [{"id": "1"}]})
    assert r.status_code == 403 and r.json()["category"] == "MISSING_SCOPES"
    # A name HubSpot does not have either is still a 400.
    r = call(client, "GET", "/crm/v3/properties/widgets")
    assert r.status_code == 400 and "widgets" in r.json()["message"]
