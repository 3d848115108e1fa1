"""Single-record create, read, update, upsert and delete, with Salesforce's validation."""

import re

import pytest
from simple_salesforce.exceptions import (SalesforceMalformedRequest, SalesforceMoreThanOneRecord,
                                          SalesforceResourceNotFound)

from sf_support import http_session

import ids  # noqa: E402  (the fake's own module, on sys.path through sf_support)

DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000\+0000$")


def error_of(exc_info):
    body = exc_info.value.content
    assert isinstance(body, list) and len(body) == 1
    return body[0]


def test_create_get_update_delete_round_trip(sf, state):
    created = sf.Contact.create({"FirstName": "Grace", "LastName": "Hopper", "Email": "grace@example.com",
                                 "Title": "Rear Admiral"})
    assert created["success"] is True and created["errors"] == []
    rid = created["id"]
    assert len(rid) == 18 and rid.startswith("003") and ids.normalize(rid[:15]) == rid

    rec = sf.Contact.get(rid)
    assert rec["attributes"] == {"type": "Contact", "url": f"/services/data/v59.0/sobjects/Contact/{rid}"}
    assert rec["Name"] == "Grace Hopper" and rec["Email"] == "grace@example.com"
    assert rec["OwnerId"] == rec["CreatedById"] == state["adminUserId"]
    assert rec["IsDeleted"] is False and rec["AccountId"] is None
    for field in ("CreatedDate", "LastModifiedDate", "SystemModstamp"):
        assert DATETIME.match(rec[field]), rec[field]

    assert sf.Contact.update(rid, {"Title": "Commodore", "FirstName": None}) == 204
    rec = sf.Contact.get(rid)
    assert rec["Title"] == "Commodore" and rec["FirstName"] is None and rec["Name"] == "Hopper"

    only = sf.Contact.get(rid, params={"fields": "LastName,Email"})
    assert list(only) == ["attributes", "LastName", "Email"]

    assert sf.Contact.delete(rid) == 204
    with pytest.raises(SalesforceResourceNotFound) as err:
        sf.Contact.get(rid)
    assert error_of(err)["errorCode"] == "ENTITY_IS_DELETED"
    with pytest.raises(SalesforceResourceNotFound) as err:
        sf.Contact.delete(rid)
    assert error_of(err)["errorCode"] == "ENTITY_IS_DELETED"


def test_fifteen_character_ids_are_accepted_in_paths(sf):
    rid = sf.Account.create({"Name": "Acme"})["id"]
    assert sf.Account.get(rid[:15])["Id"] == rid
    assert sf.Account.update(rid[:15], {"Phone": "555-0100"}) == 204


def test_unknown_and_malformed_ids(sf):
    with pytest.raises(SalesforceResourceNotFound) as err:
        sf.Contact.get(ids.make_id("003", 999_999))
    assert error_of(err) == {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    account = sf.Account.create({"Name": "Acme"})["id"]
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Contact.update(account, {"LastName": "x"})
    assert error_of(err)["errorCode"] == "MALFORMED_ID"
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Contact.delete("not-an-id")
    assert error_of(err)["errorCode"] == "MALFORMED_ID"


@pytest.mark.parametrize("body, code, fields", [
    ({"LastName": "x", "Nickname": "y"}, "INVALID_FIELD", None),
    ({"LastName": "x", "IsDeleted": True}, "INVALID_FIELD_FOR_INSERT_UPDATE", ["IsDeleted"]),
    ({"LastName": "x", "Name": "Full Name"}, "INVALID_FIELD_FOR_INSERT_UPDATE", ["Name"]),
    ({"FirstName": "no last name"}, "REQUIRED_FIELD_MISSING", ["LastName"]),
    ({"LastName": "x" * 81}, "STRING_TOO_LONG", ["LastName"]),
    ({"LastName": "x", "Email": "not-an-email"}, "INVALID_EMAIL_ADDRESS", ["Email"]),
    ({"LastName": "x", "AccountId": "0015g00000AAAAAAAA"}, "INVALID_CROSS_REFERENCE_KEY", ["AccountId"]),
    ({"LastName": "x", "AccountId": "garbage"}, "MALFORMED_ID", ["AccountId"]),
    ({"LastName": "x", "Id": "003000000000001AAA"}, "INVALID_FIELD", ["Id"]),
])
def test_contact_create_validation(sf, body, code, fields):
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Contact.create(body)
    e = error_of(err)
    assert e["errorCode"] == code
    if fields is not None:
        assert e["fields"] == fields
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 0


def test_wrong_json_types_are_parser_errors(sf):
    for body in ({"Name": "A", "NumberOfEmployees": "many"}, {"Name": "A", "AnnualRevenue": {"x": 1}},
                 {"Name": "A", "Website": True}):
        with pytest.raises(SalesforceMalformedRequest) as err:
            sf.Account.create(body)
        assert error_of(err)["errorCode"] == "JSON_PARSER_ERROR"
        assert "Cannot deserialize instance of" in error_of(err)["message"]
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Opportunity.create({"Name": "O", "StageName": "Prospecting", "CloseDate": "31/01/2026"})
    assert error_of(err)["errorCode"] == "JSON_PARSER_ERROR"
    # Numbers given as numeric strings deserialize, as they do on Salesforce.
    rid = sf.Account.create({"Name": "A", "NumberOfEmployees": "42"})["id"]
    assert sf.Account.get(rid)["NumberOfEmployees"] == 42


def test_restricted_picklists_and_number_ranges(sf):
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Lead.create({"LastName": "L", "Company": "C", "Status": "Hot"})
    assert error_of(err)["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert error_of(err)["fields"] == ["Status"]
    # LeadSource is an open picklist: any value is kept.
    rid = sf.Lead.create({"LastName": "L", "Company": "C", "LeadSource": "Trade Show"})["id"]
    lead = sf.Lead.get(rid)
    assert lead["LeadSource"] == "Trade Show" and lead["Status"] == "Open - Not Contacted"
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Account.create({"Name": "Big", "NumberOfEmployees": 10 ** 9})
    assert error_of(err)["errorCode"] == "NUMBER_OUTSIDE_VALID_RANGE"


def test_values_come_back_typed(sf):
    acc = sf.Account.create({"Name": "Typed", "NumberOfEmployees": 12, "AnnualRevenue": 1500000})["id"]
    opp = sf.Opportunity.create({"Name": "Deal", "StageName": "Negotiation/Review", "CloseDate": "2026-01-31",
                                 "Amount": 1234.567, "AccountId": acc})["id"]
    rec = sf.Opportunity.get(opp)
    assert rec["Amount"] == 1234.57 and isinstance(rec["Amount"], float)
    assert rec["CloseDate"] == "2026-01-31"
    assert rec["Probability"] == 90 and rec["IsClosed"] is False and rec["IsWon"] is False
    sf.Opportunity.update(opp, {"StageName": "Closed Won"})
    rec = sf.Opportunity.get(opp)
    assert rec["IsClosed"] is True and rec["IsWon"] is True and rec["Probability"] == 100
    account = sf.Account.get(acc)
    assert account["NumberOfEmployees"] == 12 and account["Description"] is None
    task = sf.Task.create({"Subject": "Call", "WhoId": sf.Contact.create({"LastName": "T"})["id"],
                           "WhatId": opp, "Status": "Completed"})["id"]
    t = sf.Task.get(task)
    assert t["IsClosed"] is True and t["Priority"] == "Normal"


def test_system_fields_follow_the_clock_to_the_second(fake, sf):
    fake.control("POST", "/_fake/clock", {"now": "2026-02-03T04:05:06.789Z"})
    rid = sf.Contact.create({"LastName": "Clocked"})["id"]
    fake.control("POST", "/_fake/clock", {"advance": 90})
    sf.Contact.update(rid, {"Title": "Later"})
    rec = sf.Contact.get(rid)
    assert rec["CreatedDate"] == "2026-02-03T04:05:06.000+0000"
    assert rec["SystemModstamp"] == rec["LastModifiedDate"] == "2026-02-03T04:06:36.000+0000"


def test_upsert_by_external_id_creates_updates_and_reports_duplicates(fake, sf):
    fake.control("POST", "/_fake/fields", {"object": "Contact", "name": "kontor_id__c", "type": "string",
                                          "externalId": True})
    resp = sf.Contact.upsert("kontor_id__c/K-100", {"LastName": "First"}, raw_response=True)
    assert resp.status_code == 201
    body = resp.json()
    assert body["created"] is True and body["success"] is True
    rid = body["id"]
    assert sf.Contact.get(rid)["kontor_id__c"] == "K-100"

    resp = sf.Contact.upsert("kontor_id__c/K-100", {"LastName": "Second"}, raw_response=True)
    assert resp.status_code == 200
    assert resp.json() == {"id": rid, "success": True, "errors": [], "created": False}
    assert sf.Contact.get_by_custom_id("kontor_id__c", "K-100")["LastName"] == "Second"

    sf.Contact.create({"LastName": "Twin", "kontor_id__c": "K-100"})
    with pytest.raises(SalesforceMoreThanOneRecord) as err:
        sf.Contact.upsert("kontor_id__c/K-100", {"LastName": "Third"})
    assert err.value.status == 300
    assert len(err.value.content) == 2
    assert f"/services/data/v59.0/sobjects/Contact/{rid}" in err.value.content

    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Contact.upsert("kontor_id__c/K-200", {"LastName": "x", "kontor_id__c": "K-200"})
    assert error_of(err)["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceResourceNotFound) as err:
        sf.Contact.upsert("Nickname__c/1", {"LastName": "x"})
    assert error_of(err)["errorCode"] == "NOT_FOUND"


def test_unique_external_id_refuses_a_duplicate_value(fake, sf):
    fake.control("POST", "/_fake/fields", {"object": "Account", "name": "kontor_id__c", "type": "string",
                                          "externalId": True, "unique": True})
    first = sf.Account.create({"Name": "One", "kontor_id__c": "A-1"})["id"]
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Account.create({"Name": "Two", "kontor_id__c": "a-1"})
    assert error_of(err)["errorCode"] == "DUPLICATE_VALUE"
    assert first in error_of(err)["message"]


def test_upsert_by_id(sf):
    rid = sf.Contact.create({"LastName": "ById"})["id"]
    resp = sf.Contact.upsert(f"Id/{rid}", {"Title": "Updated"}, raw_response=True)
    assert resp.status_code == 200 and resp.json()["created"] is False
    assert sf.Contact.get(rid)["Title"] == "Updated"
    # POST to /sobjects/Contact/Id creates a record (API 37.0 and later).
    created = sf.restful("sobjects/Contact/Id", method="POST", json={"LastName": "ViaIdPost"})
    assert created["success"] is True and created["id"].startswith("003")


def test_updates_of_a_converted_lead_are_refused(fake, sf):
    lead = sf.Lead.create({"LastName": "Conv", "Company": "Conv Co"})["id"]
    fake.control("POST", "/_fake/convert-lead", {"leadId": lead, "createOpportunity": False})
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Lead.update(lead, {"Title": "x"})
    assert error_of(err)["errorCode"] == "CANNOT_UPDATE_CONVERTED_LEAD"


def test_deleting_an_account_deletes_its_contacts_and_opportunities(sf):
    acc = sf.Account.create({"Name": "Parent"})["id"]
    contact = sf.Contact.create({"LastName": "Child", "AccountId": acc})["id"]
    opp = sf.Opportunity.create({"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2026-05-01",
                                 "AccountId": acc})["id"]
    sf.Account.delete(acc)
    deleted = sf.query_all("SELECT Id, IsDeleted FROM Contact", include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in deleted] == [(contact, True)]
    with pytest.raises(SalesforceResourceNotFound):
        sf.Opportunity.get(opp)


def test_assignment_rule_overwrites_owner_unless_auto_assign_false(fake, sf, state):
    rep = fake.control("POST", "/_fake/users", {"username": "queue-owner@example.com", "name": "Rule Owner"})["ids"][0]
    other = fake.control("POST", "/_fake/users", {"username": "chosen@example.com", "name": "Chosen Owner"})["ids"][0]
    fake.control("POST", "/_fake/assignment-rule", {"object": "Lead", "ownerId": rep})

    assigned = sf.Lead.create({"LastName": "A", "Company": "C", "OwnerId": other})["id"]
    assert sf.Lead.get(assigned)["OwnerId"] == rep
    kept = sf.Lead.create({"LastName": "B", "Company": "C", "OwnerId": other},
                          headers={"Sforce-Auto-Assign": "FALSE"})["id"]
    assert sf.Lead.get(kept)["OwnerId"] == other
    sf.Lead.update(kept, {"Title": "x"}, headers={"Sforce-Auto-Assign": "false"})
    assert sf.Lead.get(kept)["OwnerId"] == other
    sf.Lead.update(kept, {"Title": "y"})
    assert sf.Lead.get(kept)["OwnerId"] == rep
    # Contacts have no assignment rules.
    contact = sf.Contact.create({"LastName": "C", "OwnerId": other})["id"]
    assert sf.Contact.get(contact)["OwnerId"] == other
    fake.control("POST", "/_fake/assignment-rule", {"object": "Lead", "ownerId": None})
    cleared = sf.Lead.create({"LastName": "D", "Company": "C"})["id"]
    assert sf.Lead.get(cleared)["OwnerId"] == state["adminUserId"]


def test_inactive_owner_is_refused(fake, sf):
    inactive = fake.control("POST", "/_fake/users", {"username": "left@example.com", "name": "Left Company",
                                                    "IsActive": False})["ids"][0]
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Account.create({"Name": "A", "OwnerId": inactive})
    assert error_of(err)["errorCode"] == "INACTIVE_OWNER_OR_USER"


def test_record_failure_rule_fails_matching_writes(fake, sf):
    fake.control("POST", "/_fake/record-failures", {"object": "Contact", "field": "LastName", "equals": "FailMe",
                                                    "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                                                    "message": "No failing allowed", "count": 1})
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Contact.create({"LastName": "FailMe"})
    assert error_of(err) == {"message": "No failing allowed", "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                             "fields": ["LastName"]}
    # The rule was good for one failure only.
    assert sf.Contact.create({"LastName": "FailMe"})["success"] is True


def test_unsupported_content_type_is_refused(fake, token):
    resp = http_session(fake).post(fake.https + "/services/data/v59.0/sobjects/Contact/",
                                   headers={"Authorization": "Bearer " + token["access_token"],
                                            "Content-Type": "text/plain"}, data='{"LastName":"x"}')
    assert resp.status_code == 415
    assert resp.json()[0]["errorCode"] == "UNSUPPORTED_MEDIA_TYPE"
