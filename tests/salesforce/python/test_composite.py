"""sObject Collections through sf.restful: create, update, delete, retrieve, upsert."""

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

ROLLED_BACK = "ALL_OR_NONE_OPERATION_ROLLED_BACK"


def contact(**fields):
    return {"attributes": {"type": "Contact"}, **fields}


def counted_calls(fake):
    return sum(1 for r in fake.control("GET", "/_fake/requests")["requests"] if r["counted"])


def test_create_reports_per_record_status_codes(fake, sf):
    fake.control("DELETE", "/_fake/requests")
    result = sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": [
        contact(LastName="A"), contact(FirstName="no last name"), contact(LastName="B", Email="bad")]})
    assert result[0]["success"] is True and result[0]["id"].startswith("003") and result[0]["errors"] == []
    assert result[1] == {"success": False, "errors": [{"statusCode": "REQUIRED_FIELD_MISSING",
                                                       "message": "Required fields are missing: [LastName]",
                                                       "fields": ["LastName"]}]}
    assert result[2]["success"] is False
    assert result[2]["errors"][0]["statusCode"] == "INVALID_EMAIL_ADDRESS"
    assert "errorCode" not in result[2]["errors"][0]
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 1
    assert counted_calls(fake) == 2   # the collection is one API call, the count query the other


def test_all_or_none_rolls_back_every_record(sf):
    keep = sf.Contact.create({"LastName": "Existing"})["id"]
    result = sf.restful("composite/sobjects", method="POST", json={"allOrNone": True, "records": [
        contact(LastName="A"), contact(LastName="x" * 81), contact(LastName="C")]})
    assert [r["success"] for r in result] == [False, False, False]
    assert result[1]["errors"][0]["statusCode"] == "STRING_TOO_LONG"
    for r in (result[0], result[2]):
        assert r["errors"] == [{"statusCode": ROLLED_BACK, "fields": [],
                                "message": "Record rolled back because not all records were valid and the request "
                                           "was using AllOrNone header"}]
    assert [r["Id"] for r in sf.query("SELECT Id FROM Contact")["records"]] == [keep]

    updated = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": True, "records": [
        contact(id=keep, Title="Changed"), contact(id=keep[:3] + "Fk000000ZZZZ", Title="missing")]})
    assert updated[0] == {"id": keep, "success": False, "errors": [updated[0]["errors"][0]]}
    assert updated[0]["errors"][0]["statusCode"] == ROLLED_BACK
    assert sf.Contact.get(keep)["Title"] is None


def test_update_and_delete_collections(fake, sf):
    a, b = (sf.Contact.create({"LastName": n})["id"] for n in ("A", "B"))
    result = sf.restful("composite/sobjects", method="PATCH", json={"records": [
        contact(id=a, Title="One"), contact(Id=b, Title="Two"), contact(Title="no id")]})
    assert result[0] == {"id": a, "success": True, "errors": []}
    assert result[1] == {"id": b, "success": True, "errors": []}
    assert result[2]["errors"][0]["statusCode"] == "MISSING_ARGUMENT"
    assert sf.Contact.get(b)["Title"] == "Two"

    deleted = sf.restful("composite/sobjects", method="DELETE",
                         params={"ids": f"{a},{b[:15]},bogus", "allOrNone": "false"})
    assert deleted[0] == {"id": a, "success": True, "errors": []}
    assert deleted[1] == {"id": b, "success": True, "errors": []}
    assert deleted[2]["success"] is False and deleted[2]["errors"][0]["statusCode"] == "MALFORMED_ID"
    again = sf.restful("composite/sobjects", method="DELETE", params={"ids": a})
    assert again[0]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"


def test_delete_all_or_none_keeps_everything(sf):
    a = sf.Contact.create({"LastName": "A"})["id"]
    gone = sf.Contact.create({"LastName": "Gone"})["id"]
    sf.Contact.delete(gone)
    result = sf.restful("composite/sobjects", method="DELETE", params={"ids": f"{a},{gone}", "allOrNone": "true"})
    assert result[0]["errors"][0]["statusCode"] == ROLLED_BACK
    assert result[1]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
    assert sf.Contact.get(a)["IsDeleted"] is False


def test_retrieve_by_get_and_post(sf):
    a = sf.Account.create({"Name": "Acme", "Phone": "555"})["id"]
    gone = sf.Account.create({"Name": "Gone"})["id"]
    sf.Account.delete(gone)
    got = sf.restful("composite/sobjects/Account", params={"ids": f"{a},{gone}", "fields": "Name,Phone"})
    assert got[0] == {"attributes": {"type": "Account", "url": f"/services/data/v59.0/sobjects/Account/{a}"},
                      "Name": "Acme", "Phone": "555"}
    assert got[1] is None
    posted = sf.restful("composite/sobjects/Account", method="POST", json={"ids": [a[:15]], "fields": ["Id", "Name"]})
    assert posted == [{"attributes": got[0]["attributes"], "Id": a, "Name": "Acme"}]
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.restful("composite/sobjects/Account", params={"ids": a, "fields": "Name,Nope"})
    assert err.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_upsert_collection_by_external_id(fake, sf):
    fake.control("POST", "/_fake/fields", {"object": "Contact", "name": "kontor_id__c", "type": "string",
                                          "externalId": True})
    existing = sf.Contact.create({"LastName": "Old", "kontor_id__c": "K1"})["id"]
    result = sf.restful("composite/sobjects/Contact/kontor_id__c", method="PATCH", json={"allOrNone": False, "records": [
        contact(kontor_id__c="K1", LastName="Updated"), contact(kontor_id__c="K2", LastName="New"),
        contact(LastName="No key")]})
    assert result[0] == {"id": existing, "success": True, "errors": [], "created": False}
    assert result[1]["success"] is True and result[1]["created"] is True
    assert result[2]["success"] is False and result[2]["errors"][0]["fields"] == ["kontor_id__c"]
    assert sf.Contact.get(existing)["LastName"] == "Updated"
    assert sf.Contact.get(result[1]["id"])["kontor_id__c"] == "K2"


def test_more_than_two_hundred_records_is_refused(sf):
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.restful("composite/sobjects", method="POST",
                   json={"records": [contact(LastName=f"n{i}") for i in range(201)]})
    assert err.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 0
    ok = sf.restful("composite/sobjects", method="POST",
                    json={"records": [contact(LastName=f"n{i}") for i in range(200)]})
    assert all(r["success"] for r in ok) and len({r["id"] for r in ok}) == 200


def test_unknown_field_fails_the_whole_request(sf):
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.restful("composite/sobjects", method="POST", json={"records": [
            contact(LastName="fine"), contact(LastName="x", Nickname="y")]})
    assert err.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 0


def test_record_failure_rule_applies_to_collections(fake, sf):
    fake.control("POST", "/_fake/record-failures", {"object": "Contact", "field": "LastName", "equals": "FailMe",
                                                    "statusCode": "DUPLICATES_DETECTED",
                                                    "message": "Use one of these records?"})
    result = sf.restful("composite/sobjects", method="POST", json={"records": [
        contact(LastName="FailMe"), contact(LastName="Fine")]})
    assert result[0] == {"success": False, "errors": [{"statusCode": "DUPLICATES_DETECTED",
                                                       "message": "Use one of these records?",
                                                       "fields": ["LastName"]}]}
    assert result[1]["success"] is True


def test_mixed_types_and_auto_assign_in_one_collection(fake, sf):
    owner = fake.control("POST", "/_fake/users", {"username": "rule@example.com", "name": "Rule Owner"})["ids"][0]
    fake.control("POST", "/_fake/assignment-rule", {"object": "Account", "ownerId": owner})
    records = [{"attributes": {"type": "Account"}, "Name": "Acme"}, contact(LastName="Mixed")]
    assigned = sf.restful("composite/sobjects", method="POST", json={"records": records})
    kept = sf.restful("composite/sobjects", method="POST", json={"records": records[:1]},
                      headers={"Sforce-Auto-Assign": "FALSE"})
    assert sf.Account.get(assigned[0]["id"])["OwnerId"] == owner
    assert sf.Account.get(kept[0]["id"])["OwnerId"] != owner
    assert sf.Contact.get(assigned[1]["id"])["LastName"] == "Mixed"
