"""Merges and lead conversion made through the control API, as a sync engine then sees them."""

from datetime import datetime, timezone

import pytest
from simple_salesforce.exceptions import SalesforceResourceNotFound


def freeze(fake, when):
    fake.control("POST", "/_fake/clock", {"now": when})


def test_account_merge_reparents_children_and_deletes_the_loser(fake, sf):
    freeze(fake, "2026-06-01T09:00:00Z")
    master = sf.Account.create({"Name": "Acme"})["id"]
    loser = sf.Account.create({"Name": "ACME Inc"})["id"]
    contact = sf.Contact.create({"LastName": "Child", "AccountId": loser})["id"]
    opp = sf.Opportunity.create({"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2026-09-30",
                                 "AccountId": loser})["id"]
    task = sf.Task.create({"Subject": "Call", "WhatId": loser})["id"]
    fake.control("POST", "/_fake/clock", {"advance": 300})
    result = fake.control("POST", "/_fake/merge", {"object": "Account", "master": master, "losers": [loser]})
    assert result["mergedRecordIds"] == [loser]

    with pytest.raises(SalesforceResourceNotFound) as err:
        sf.Account.get(loser)
    assert err.value.content[0]["errorCode"] == "ENTITY_IS_DELETED"
    for sobject, rid, field in (("Contact", contact, "AccountId"), ("Opportunity", opp, "AccountId"),
                                ("Task", task, "WhatId")):
        rec = getattr(sf, sobject).get(rid)
        assert rec[field] == master, sobject
        assert rec["SystemModstamp"] == "2026-06-01T09:05:00.000+0000", sobject
    gone = sf.query_all(f"SELECT Id, IsDeleted, MasterRecordId FROM Account WHERE Id = '{loser}'",
                        include_deleted=True)["records"]
    assert gone[0]["IsDeleted"] is True and gone[0]["MasterRecordId"] == master
    window = (datetime(2026, 6, 1, 9, tzinfo=timezone.utc), datetime(2026, 6, 1, 10, tzinfo=timezone.utc))
    fake.control("POST", "/_fake/clock", {"advance": 60})
    assert [d["id"] for d in sf.Account.deleted(*window)["deletedRecords"]] == [loser]
    assert set(sf.Contact.updated(*window)["ids"]) == {contact}


def test_contact_merge_moves_tasks(fake, sf):
    master, l1, l2 = (sf.Contact.create({"LastName": n, "Email": "same@example.com"})["id"] for n in "ABC")
    task = sf.Task.create({"Subject": "Follow up", "WhoId": l2})["id"]
    fake.control("POST", "/_fake/merge", {"object": "Contact", "master": master, "losers": [l1, l2]})
    assert sf.Task.get(task)["WhoId"] == master
    live = sf.query("SELECT Id FROM Contact WHERE Email = 'same@example.com'")["records"]
    assert [r["Id"] for r in live] == [master]


def test_merge_refuses_bad_requests(fake, sf):
    a = sf.Contact.create({"LastName": "A"})["id"]
    opp_acc = sf.Account.create({"Name": "X"})["id"]
    for body in ({"object": "Contact", "master": a, "losers": [a]},
                 {"object": "Contact", "master": a, "losers": [opp_acc]},
                 {"object": "Opportunity", "master": a, "losers": [a]}):
        with pytest.raises(RuntimeError, match="400"):
            fake.control("POST", "/_fake/merge", body)


def test_lead_conversion_creates_contact_account_and_opportunity(fake, sf):
    freeze(fake, "2026-05-14T16:00:00Z")
    lead = sf.Lead.create({"FirstName": "Lin", "LastName": "Lead", "Company": "Lead Co", "Email": "lin@leadco.example",
                           "Phone": "555-1", "Title": "CTO", "City": "Berlin", "Industry": "Technology",
                           "LeadSource": "Web"})["id"]
    task = sf.Task.create({"Subject": "Intro call", "WhoId": lead})["id"]
    out = fake.control("POST", "/_fake/convert-lead", {"leadId": lead, "createOpportunity": True})

    converted = sf.Lead.get(lead)
    assert converted["IsConverted"] is True and converted["Status"] == "Closed - Converted"
    assert converted["ConvertedContactId"] == out["contactId"]
    assert converted["ConvertedAccountId"] == out["accountId"]
    assert converted["ConvertedOpportunityId"] == out["opportunityId"]
    assert converted["ConvertedDate"] == "2026-05-14"

    contact = sf.Contact.get(out["contactId"])
    assert (contact["Name"], contact["Email"], contact["Title"], contact["MailingCity"]) == (
        "Lin Lead", "lin@leadco.example", "CTO", "Berlin")
    assert contact["AccountId"] == out["accountId"] and contact["LeadSource"] == "Web"
    account = sf.Account.get(out["accountId"])
    assert account["Name"] == "Lead Co" and account["Industry"] == "Technology" and account["BillingCity"] == "Berlin"
    opp = sf.Opportunity.get(out["opportunityId"])
    assert opp["Name"] == "Lead Co-" and opp["StageName"] == "Prospecting" and opp["CloseDate"] == "2026-06-30"
    assert opp["AccountId"] == out["accountId"]
    assert sf.Task.get(task)["WhoId"] == out["contactId"]
    found = sf.query(f"SELECT Id FROM Lead WHERE ConvertedContactId = '{out['contactId']}'")["records"]
    assert [r["Id"] for r in found] == [lead]


def test_conversion_into_existing_records_fills_blanks_only(fake, sf):
    account = sf.Account.create({"Name": "Existing Co"})["id"]
    contact = sf.Contact.create({"LastName": "Kept", "Title": "Keeps title"})["id"]
    lead = sf.Lead.create({"LastName": "Lead", "Company": "Ignored", "Title": "Lead title",
                           "Email": "fills@example.com"})["id"]
    out = fake.control("POST", "/_fake/convert-lead", {"leadId": lead, "accountId": account,
                                                        "contactId": contact, "createOpportunity": False})
    assert out == {"leadId": lead, "accountId": account, "contactId": contact, "opportunityId": None}
    rec = sf.Contact.get(contact)
    assert (rec["LastName"], rec["Title"], rec["Email"], rec["AccountId"]) == (
        "Kept", "Keeps title", "fills@example.com", account)
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 1
    with pytest.raises(RuntimeError, match="already converted"):
        fake.control("POST", "/_fake/convert-lead", {"leadId": lead})
