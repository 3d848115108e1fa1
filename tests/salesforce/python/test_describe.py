"""Versions, describe global, describe, basic info, custom fields and API-version paths."""

import pytest
from simple_salesforce.exceptions import SalesforceResourceNotFound

from sf_support import client, http_session


def test_versions_list_needs_no_auth_and_names_releases(fake):
    versions = http_session(fake).get(fake.https + "/services/data/").json()
    by_version = {v["version"]: v for v in versions}
    assert by_version["59.0"] == {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"}
    assert by_version["62.0"]["label"] == "Winter '25"
    assert by_version["50.0"]["label"] == "Winter '21"


def test_describe_global_lists_objects_with_key_prefixes(sf):
    body = sf.describe()
    assert body["encoding"] == "UTF-8" and body["maxBatchSize"] == 200
    prefixes = {o["name"]: o["keyPrefix"] for o in body["sobjects"]}
    assert prefixes == {"Account": "001", "Contact": "003", "User": "005", "Opportunity": "006",
                        "Group": "00G", "Organization": "00D", "Lead": "00Q", "Task": "00T"}
    contact = next(o for o in body["sobjects"] if o["name"] == "Contact")
    assert contact["createable"] and contact["queryable"] and contact["replicateable"]
    assert contact["urls"]["describe"] == "/services/data/v59.0/sobjects/Contact/describe"
    org = next(o for o in body["sobjects"] if o["name"] == "Organization")
    assert org["queryable"] and not org["createable"] and not org["updateable"]


def fields_of(describe):
    return {f["name"]: f for f in describe["fields"]}


def test_contact_describe_has_full_field_metadata(sf):
    d = sf.Contact.describe()
    assert d["name"] == "Contact" and d["keyPrefix"] == "003"
    f = fields_of(d)
    assert f["Id"]["type"] == "id" and f["Id"]["length"] == 18 and not f["Id"]["createable"]
    assert f["LastName"]["type"] == "string" and f["LastName"]["length"] == 80
    assert f["LastName"]["nillable"] is False and f["LastName"]["createable"] is True
    assert f["Name"]["createable"] is False and f["Name"]["nameField"] is True
    assert f["Email"]["type"] == "email" and f["Email"]["idLookup"] is True
    assert f["AccountId"]["type"] == "reference" and f["AccountId"]["referenceTo"] == ["Account"]
    assert f["AccountId"]["relationshipName"] == "Account"
    assert f["SystemModstamp"]["type"] == "datetime" and f["SystemModstamp"]["updateable"] is False
    assert f["IsDeleted"]["type"] == "boolean" and f["IsDeleted"]["defaultValue"] is False
    assert f["MasterRecordId"]["referenceTo"] == ["Contact"]
    for field in d["fields"]:
        for key in ("name", "label", "type", "length", "nillable", "createable", "updateable", "custom",
                    "externalId", "calculated", "defaultValue", "picklistValues", "referenceTo",
                    "relationshipName", "unique", "idLookup"):
            assert key in field, (field["name"], key)


def test_picklists_carry_values_defaults_and_restriction(sf):
    lead = fields_of(sf.Lead.describe())
    status = lead["Status"]
    assert status["type"] == "picklist" and status["restrictedPicklist"] is True
    assert status["defaultValue"] == "Open - Not Contacted"
    assert {"value": "Closed - Converted", "label": "Closed - Converted", "active": True,
            "defaultValue": False, "validFor": None} in status["picklistValues"]
    assert lead["Company"]["nillable"] is False
    opp = fields_of(sf.Opportunity.describe())
    stages = [p["value"] for p in opp["StageName"]["picklistValues"]]
    assert stages[0] == "Prospecting" and "Closed Won" in stages and "Closed Lost" in stages
    assert opp["CloseDate"]["type"] == "date" and opp["Amount"]["type"] == "currency"
    task = fields_of(sf.Task.describe())
    assert task["WhoId"]["referenceTo"] == ["Contact", "Lead"]
    assert task["WhatId"]["referenceTo"] == ["Account", "Opportunity"]
    assert task["Priority"]["defaultValue"] == "Normal"


def test_user_and_organization_have_no_owner_or_is_deleted(sf):
    user = fields_of(sf.User.describe())
    assert "OwnerId" not in user and "IsDeleted" not in user
    assert {"Username", "FirstName", "LastName", "Name", "Email", "IsActive", "UserType"} <= set(user)
    org = fields_of(sf.Organization.describe())
    assert "OwnerId" not in org and "Name" in org


def test_account_describe_lists_child_relationships(sf):
    rels = {(r["childSObject"], r["field"]): r for r in sf.Account.describe()["childRelationships"]}
    assert rels[("Contact", "AccountId")]["relationshipName"] == "Contacts"
    assert rels[("Opportunity", "AccountId")]["relationshipName"] == "Opportunities"


def test_custom_field_added_by_control_api_shows_in_describe_and_queries(fake, sf):
    fake.control("POST", "/_fake/fields", {"object": "Contact", "name": "kontor_id__c", "type": "string",
                                          "length": 64, "externalId": True, "unique": True})
    f = fields_of(sf.Contact.describe())["kontor_id__c"]
    assert f["custom"] and f["externalId"] and f["unique"] and f["idLookup"] and f["length"] == 64
    sf.Contact.create({"LastName": "Ext", "kontor_id__c": "K-1"})
    rows = sf.query("SELECT Id, kontor_id__c FROM Contact WHERE kontor_id__c = 'k-1'")["records"]
    assert [r["kontor_id__c"] for r in rows] == ["K-1"]


def test_basic_info_lists_recent_items(sf):
    created = sf.Contact.create({"FirstName": "Rita", "LastName": "Recent"})
    info = sf.Contact.metadata()
    assert info["objectDescribe"]["name"] == "Contact"
    assert info["recentItems"][0]["Id"] == created["id"]
    assert info["recentItems"][0]["Name"] == "Rita Recent"


@pytest.mark.parametrize("version", ["50.0", "62.0"])
def test_other_api_versions_route_and_echo_their_version(fake, token, version):
    sf = client(fake, token, version=version)
    created = sf.Contact.create({"LastName": "Versioned"})
    rec = sf.query(f"SELECT Id FROM Contact WHERE Id = '{created['id']}'")["records"][0]
    assert rec["attributes"]["url"] == f"/services/data/v{version}/sobjects/Contact/{created['id']}"
    assert sf.Contact.describe()["urls"]["sobject"] == f"/services/data/v{version}/sobjects/Contact"


def test_unknown_version_and_unknown_object_are_not_found(fake, token):
    with pytest.raises(SalesforceResourceNotFound):
        client(fake, token, version="99.0").describe()
    sf = client(fake, token)
    with pytest.raises(SalesforceResourceNotFound) as err:
        sf.Widget.describe()
    assert err.value.content == [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]


def test_both_trailing_slash_forms_route(fake, token):
    s = http_session(fake)
    auth = {"Authorization": "Bearer " + token["access_token"]}
    base = fake.https + "/services/data/v59.0"
    for path in ("/sobjects/Contact", "/sobjects/Contact/", "/query?q=SELECT+Id+FROM+User",
                 "/query/?q=SELECT+Id+FROM+User", "/sobjects/Contact/describe", "/limits", "/limits/"):
        assert s.get(base + path, headers=auth).status_code == 200, path
    for path in ("/sobjects/Contact", "/sobjects/Contact/"):
        resp = s.post(base + path, headers=auth, json={"LastName": "Slash"})
        assert resp.status_code == 201, path
