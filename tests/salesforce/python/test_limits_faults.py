"""API usage counting, the daily limit, injected faults and the request log."""

import pytest
from simple_salesforce.exceptions import SalesforceGeneralError, SalesforceRefusedRequest
from simple_salesforce.util import Usage

from sf_support import http_session


def test_every_call_counts_and_api_usage_is_parsed(fake, sf):
    sf.query("SELECT Id FROM User")
    assert sf.api_usage["api-usage"] == Usage(used=1, total=15000)
    contacts = sf.Contact
    contacts.create({"LastName": "Count me"})
    assert contacts.api_usage["api-usage"] == Usage(used=2, total=15000)
    limits = sf.limits()
    assert limits["DailyApiRequests"] == {"Max": 15000, "Remaining": 15000 - 3}
    # Control calls and refused sessions are not API calls.
    fake.control("GET", "/_fake/state")
    http_session(fake).get(fake.https + "/services/data/v59.0/limits/")
    sf.query("SELECT Id FROM User")
    assert sf.api_usage["api-usage"].used == 4


def test_request_limit_exceeded(fake, sf):
    fake.control("POST", "/_fake/config", {"api_usage": 14999})
    sf.query("SELECT Id FROM User")
    assert sf.api_usage["api-usage"] == Usage(used=15000, total=15000)
    with pytest.raises(SalesforceRefusedRequest) as err:
        sf.query("SELECT Id FROM User")
    assert err.value.status == 403
    assert err.value.content == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert fake.control("GET", "/_fake/config")["api_usage"] == 15000


def test_the_window_rolls_over_twenty_four_hours(fake, sf):
    fake.control("POST", "/_fake/clock", {"now": "2026-05-01T00:00:00Z"})
    fake.control("POST", "/_fake/config", {"daily_limit": 3})
    for _ in range(3):
        sf.query("SELECT Id FROM User")
    with pytest.raises(SalesforceRefusedRequest):
        sf.query("SELECT Id FROM User")
    fake.control("POST", "/_fake/clock", {"advance": 86399})
    with pytest.raises(SalesforceRefusedRequest):
        sf.query("SELECT Id FROM User")
    fake.control("POST", "/_fake/clock", {"advance": 1})
    sf.query("SELECT Id FROM User")
    assert sf.api_usage["api-usage"] == Usage(used=1, total=3)


def test_injected_503_answers_server_unavailable_then_recovers(fake, sf):
    fake.control("POST", "/_fake/faults", {"status": 503, "count": 2, "path_contains": "/query"})
    sf.Contact.create({"LastName": "Unaffected"})
    for _ in range(2):
        with pytest.raises(SalesforceGeneralError) as err:
            sf.query("SELECT Id FROM Contact")
        assert err.value.status == 503
        assert err.value.content[0]["errorCode"] == "SERVER_UNAVAILABLE"
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 1
    log = fake.control("GET", "/_fake/requests")["requests"]
    assert [(r["status"], r["counted"]) for r in log if "/query" in r["path"]] == [
        (503, False), (503, False), (200, True)]


def test_faults_can_target_a_method(fake, sf):
    fake.control("POST", "/_fake/faults", {"status": 500, "method": "PATCH"})
    rid = sf.Contact.create({"LastName": "A"})["id"]
    with pytest.raises(SalesforceGeneralError) as err:
        sf.Contact.update(rid, {"Title": "x"})
    assert err.value.status == 500 and err.value.content[0]["errorCode"] == "UNKNOWN_EXCEPTION"
    assert sf.Contact.update(rid, {"Title": "x"}) == 204


def test_request_log_records_what_the_client_sent(fake, sf):
    fake.control("DELETE", "/_fake/requests")
    sf.Lead.create({"LastName": "L", "Company": "C"}, headers={"Sforce-Auto-Assign": "FALSE"})
    sf.query("SELECT Id FROM Lead")
    log = fake.control("GET", "/_fake/requests")["requests"]
    assert [(r["method"], r["path"], r["status"]) for r in log] == [
        ("POST", "/services/data/v59.0/sobjects/Lead/", 201), ("GET", "/services/data/v59.0/query/", 200)]
    assert log[0]["headers"]["Sforce-Auto-Assign"] == "FALSE"
    assert log[0]["body"] == '{"LastName": "L", "Company": "C"}'
    assert log[1]["query"] == "q=SELECT+Id+FROM+Lead"
    assert all(r["listener"] == "https" and r["counted"] for r in log)
