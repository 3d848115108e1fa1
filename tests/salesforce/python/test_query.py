"""SOQL through query, queryAll and query locators: paging, snapshots and the strict subset."""

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sf_support import http_session, load


def contacts(n, **extra):
    return [{"FirstName": f"F{i:05d}", "LastName": f"L{i:05d}", "Email": f"c{i}@example.com", **extra}
            for i in range(n)]


def test_paging_over_more_than_two_thousand_records(fake, sf):
    ids = load(fake, "Contact", contacts(4500))
    first = sf.query("SELECT Id, LastName FROM Contact")
    assert first["totalSize"] == 4500 and first["done"] is False
    assert len(first["records"]) == 2000
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    assert first["nextRecordsUrl"].endswith("-2000")
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert len(second["records"]) == 2000 and second["done"] is False
    # query_more with just the locator rebuilds the URL under query/.
    third = sf.query_more(second["nextRecordsUrl"].rsplit("/", 1)[1])
    assert len(third["records"]) == 500 and third["done"] is True and "nextRecordsUrl" not in third
    seen = [r["Id"] for page in (first, second, third) for r in page["records"]]
    assert seen == ids

    everything = sf.query_all("SELECT Id FROM Contact")
    assert everything["totalSize"] == 4500 and len({r["Id"] for r in everything["records"]}) == 4500
    assert sum(1 for _ in sf.query_all_iter("SELECT Id FROM Contact WHERE LastName LIKE 'L00%'")) == 1000


def test_batch_size_header_sets_the_page_size(fake, sf):
    load(fake, "Contact", contacts(700))
    page = sf.query("SELECT Id FROM Contact", headers={"Sforce-Query-Options": "batchSize=300"})
    assert len(page["records"]) == 300 and page["nextRecordsUrl"].endswith("-300")
    # The following pages keep the size the query asked for.
    page = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
    assert len(page["records"]) == 300 and page["nextRecordsUrl"].endswith("-600")
    # Below the minimum of 200 the header is raised to 200.
    page = sf.query("SELECT Id FROM Contact", headers={"Sforce-Query-Options": "batchSize=50"})
    assert len(page["records"]) == 200


def test_results_are_a_snapshot_taken_at_the_first_call(fake, sf):
    ids = load(fake, "Contact", contacts(2500))
    first = sf.query("SELECT Id, Title FROM Contact ORDER BY LastName")
    sf.Contact.update(ids[2100], {"Title": "Changed after the first page"})
    sf.Contact.delete(ids[2200])
    sf.Contact.create({"LastName": "Z-new"})
    rest = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert rest["totalSize"] == 2500 and len(rest["records"]) == 500
    by_id = {r["Id"]: r for r in rest["records"]}
    assert by_id[ids[2100]]["Title"] is None
    assert ids[2200] in by_id


def test_locators_work_under_query_all_and_unknown_ones_fail(fake, sf, token):
    load(fake, "Contact", contacts(2100))
    first = sf.query("SELECT Id FROM Contact")
    locator = first["nextRecordsUrl"].rsplit("/", 1)[1]
    s = http_session(fake)
    auth = {"Authorization": "Bearer " + token["access_token"]}
    resp = s.get(f"{fake.https}/services/data/v59.0/queryAll/{locator}", headers=auth)
    assert resp.status_code == 200 and len(resp.json()["records"]) == 100
    bad = s.get(f"{fake.https}/services/data/v59.0/query/01gFk00000000ZZAAA-2000", headers=auth)
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_query_all_includes_deleted_and_merged_rows(fake, sf):
    keep, gone, merged = (sf.Contact.create({"LastName": n})["id"] for n in ("Keep", "Gone", "Merged"))
    sf.Contact.delete(gone)
    fake.control("POST", "/_fake/merge", {"object": "Contact", "master": keep, "losers": [merged]})
    live = sf.query("SELECT Id FROM Contact")["records"]
    assert [r["Id"] for r in live] == [keep]
    everything = sf.query_all("SELECT Id, IsDeleted, MasterRecordId FROM Contact ORDER BY LastName",
                              include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"], r["MasterRecordId"]) for r in everything] == [
        (gone, True, None), (keep, False, None), (merged, True, keep)]
    assert sf.query("SELECT COUNT() FROM Contact", include_deleted=True)["totalSize"] == 3


def test_count_limit_and_offset(fake, sf):
    load(fake, "Lead", [{"LastName": f"L{i}", "Company": "Acme" if i % 3 == 0 else "Other"} for i in range(30)])
    count = sf.query("SELECT COUNT() FROM Lead WHERE Company = 'acme'")
    assert count == {"totalSize": 10, "done": True, "records": []}
    page = sf.query("SELECT LastName FROM Lead ORDER BY LastName LIMIT 5 OFFSET 2")
    assert page["totalSize"] == 5
    names = sorted(f"L{i}" for i in range(30))
    assert [r["LastName"] for r in page["records"]] == names[2:7]
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query("SELECT Id FROM Lead OFFSET 2001")
    assert err.value.content[0]["errorCode"] == "NUMBER_OUTSIDE_VALID_RANGE"


def test_order_by_directions_and_null_placement(fake, sf):
    load(fake, "Account", [{"Name": "b", "NumberOfEmployees": 5}, {"Name": "A", "NumberOfEmployees": None},
                           {"Name": "c", "NumberOfEmployees": 50}, {"Name": "B2", "NumberOfEmployees": 7}])

    def names(q):
        return [r["Name"] for r in sf.query(q)["records"]]
    assert names("SELECT Name FROM Account ORDER BY Name") == ["A", "b", "B2", "c"]
    assert names("SELECT Name FROM Account ORDER BY NumberOfEmployees") == ["A", "b", "B2", "c"]
    assert names("SELECT Name FROM Account ORDER BY NumberOfEmployees DESC") == ["A", "c", "B2", "b"]
    assert names("SELECT Name FROM Account ORDER BY NumberOfEmployees DESC NULLS LAST") == ["c", "B2", "b", "A"]
    assert names("SELECT Name FROM Account ORDER BY NumberOfEmployees ASC NULLS LAST") == ["b", "B2", "c", "A"]


def test_where_clauses_compare_by_field_type(fake, sf):
    fake.control("POST", "/_fake/clock", {"now": "2026-01-31T10:00:00Z"})
    early = sf.Contact.create({"LastName": "Early", "Email": "Early@Example.com"})["id"]
    fake.control("POST", "/_fake/clock", {"advance": 3600})
    late = sf.Contact.create({"LastName": "O'Late", "Department": "Sales"})["id"]

    def ids_for(where):
        return {r["Id"] for r in sf.query(f"SELECT Id FROM Contact WHERE {where}")["records"]}
    assert ids_for("CreatedDate > 2026-01-31T10:30:00Z") == {late}
    assert ids_for("CreatedDate = 2026-01-31T11:00:00+01:00") == {early}
    assert ids_for("CreatedDate >= 2026-01-31T02:00:00.000-0800") == {early, late}
    assert ids_for("CreatedDate < 2026-01-31T10:00:00.001Z") == {early}
    assert ids_for("Email = 'early@example.com'") == {early}
    assert ids_for("Email LIKE 'EARLY@%'") == {early}
    assert ids_for("LastName = 'O\\'Late'") == {late}
    assert ids_for("LastName LIKE 'O_Late'") == {late}
    assert ids_for("Email = null") == {late}
    assert ids_for("Department != 'Sales'") == {early}
    assert ids_for(f"Id = '{early[:15]}'") == {early}
    assert ids_for(f"Id IN ('{early}', '{late[:15]}')") == {early, late}
    assert ids_for(f"Id NOT IN ('{early}')") == {late}
    assert ids_for(f"Id > '{early}'") == {late}
    assert ids_for("NOT (LastName = 'Early') AND IsDeleted = false") == {late}
    assert ids_for("(LastName = 'Early' OR LastName = 'Nobody') AND Email != null") == {early}


def test_numbers_dates_and_booleans(fake, sf):
    acc = sf.Account.create({"Name": "N"})["id"]
    for stage, amount, close in (("Prospecting", 100, "2026-01-15"), ("Closed Won", 2500.5, "2026-02-01"),
                                 ("Closed Lost", None, "2026-03-01")):
        sf.Opportunity.create({"Name": stage, "StageName": stage, "Amount": amount, "CloseDate": close,
                               "AccountId": acc})

    def names(where):
        return sorted(r["Name"] for r in sf.query(f"SELECT Name FROM Opportunity WHERE {where}")["records"])
    assert names("Amount > 99.5") == ["Closed Won", "Prospecting"]
    assert names("Amount >= 2500.5") == ["Closed Won"]
    assert names("CloseDate < 2026-02-01") == ["Prospecting"]
    assert names("IsClosed = true AND IsWon = false") == ["Closed Lost"]
    assert names("IsWon = null") == ["Closed Lost", "Prospecting"]
    assert names("IsWon != null") == ["Closed Won"]
    assert names("StageName IN ('Closed Won', 'Prospecting')") == ["Closed Won", "Prospecting"]


REFUSED = [
    ("SELECT Id, (SELECT Id FROM Contacts) FROM Account", "MALFORMED_QUERY", "'('"),
    ("SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry", "MALFORMED_QUERY", "'COUNT'"),
    ("SELECT Id FROM Account GROUP BY Industry", "MALFORMED_QUERY", "'GROUP'"),
    ("SELECT Id, Account.Name FROM Contact", "MALFORMED_QUERY", "'Account.Name'"),
    ("SELECT Id FROM Contact WHERE Account.Name = 'x'", "MALFORMED_QUERY", "'Account.Name'"),
    ("SELECT Id FROM Contact WHERE CreatedDate = LAST_N_DAYS:7", "MALFORMED_QUERY", "'LAST_N_DAYS'"),
    ("SELECT Id FROM Contact WHERE CreatedDate > TODAY", "MALFORMED_QUERY", "'TODAY'"),
    ("SELECT Id FROM Contact LIMIT 5 garbage", "MALFORMED_QUERY", "'garbage'"),
    ("SELECT Id FROM Contact WHERE (LastName = 'x'", "MALFORMED_QUERY", "<EOF>"),
    ("SELECT Id FROM Contact WHERE LastName = 'x')", "MALFORMED_QUERY", "')'"),
    ("SELECT Id Contact", "MALFORMED_QUERY", "'Contact'"),
    ("SELECT Id FROM Contact WHERE", "MALFORMED_QUERY", "<EOF>"),
    ("SELECT Id FROM Contact WHERE LastName ~= 'x'", "MALFORMED_QUERY", "'~'"),
    ("SELECT Id FROM Contact WHERE LastName == 'x'", "MALFORMED_QUERY", "'='"),
    ("SELECT Id FROM Contact WHERE LastName = 'a' AND Email = 'b' OR Phone = 'c'", "MALFORMED_QUERY", "'OR'"),
    ("SELECT Id FROM Contact FOR UPDATE", "MALFORMED_QUERY", "'FOR'"),
    ("SELECT Id FROM Contact WITH SECURITY_ENFORCED", "MALFORMED_QUERY", "'WITH'"),
    ("SELECT MAX(Amount) FROM Opportunity", "MALFORMED_QUERY", "'MAX'"),
    ("SELECT FIELDS(ALL) FROM Contact LIMIT 200", "MALFORMED_QUERY", "'FIELDS'"),
    ("SELECT COUNT() FROM Contact ORDER BY Name", "MALFORMED_QUERY", "'ORDER'"),
    ("SELECT Id FROM Contact WHERE Id IN (SELECT ContactId FROM Case)", "MALFORMED_QUERY", "'SELECT'"),
    ("SELECT Id FROM Contact WHERE LastName = :name", "MALFORMED_QUERY", "':'"),
    ("SELECT Id FROM Contact WHERE LastName = 'unterminated", "MALFORMED_QUERY", "unterminated"),
    ("SELECT Id FROM Contact WHERE CreatedDate > 2026-01-31T10:00:00", "MALFORMED_QUERY", "2026-01-31T10:00:00"),
    ("SELECT Id, Id FROM Contact", "MALFORMED_QUERY", "duplicate field selected: Id"),
    ("SELECT Id FROM Widget", "INVALID_TYPE", "sObject type 'Widget' is not supported"),
    ("SELECT Id, Nickname FROM Contact", "INVALID_FIELD", "No such column 'Nickname' on entity 'Contact'"),
    ("SELECT Id FROM Contact ORDER BY Description", "INVALID_FIELD", "can not be sorted"),
    ("SELECT Id FROM Contact WHERE Description = 'x'", "INVALID_FIELD", "can not be filtered"),
    ("SELECT Id FROM Contact WHERE CreatedDate > '2026-01-01T00:00:00Z'", "INVALID_QUERY_FILTER_OPERATOR", "dateTime"),
    ("SELECT Id FROM Opportunity WHERE CloseDate = 2026-01-01T00:00:00Z", "INVALID_QUERY_FILTER_OPERATOR", "type date"),
    ("SELECT Id FROM Account WHERE NumberOfEmployees = '5'", "INVALID_QUERY_FILTER_OPERATOR", "type int"),
    ("SELECT Id FROM Contact WHERE LastName = 5", "INVALID_QUERY_FILTER_OPERATOR", "type string"),
    ("SELECT Id FROM Contact WHERE Id = 'abc'", "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: abc"),
    ("SELECT Id FROM Contact WHERE IsDeleted > false", "INVALID_QUERY_FILTER_OPERATOR", "boolean"),
]


@pytest.mark.parametrize("soql, code, fragment", REFUSED, ids=[r[0][:60] for r in REFUSED])
def test_queries_outside_the_subset_are_refused(sf, soql, code, fragment):
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query(soql)
    body = err.value.content
    assert err.value.status == 400
    assert body[0]["errorCode"] == code
    assert fragment in body[0]["message"]


def test_malformed_query_message_points_at_the_token(sf):
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query("SELECT Id FROM Contact GROUP BY Id")
    assert err.value.content[0]["message"] == (
        "\nSELECT Id FROM Contact GROUP BY Id\n                       ^\n"
        "ERROR at Row:1:Column:24\nunexpected token: 'GROUP'")


ACCEPTED = [
    ("select id, lastname from contact where lastname = 'ada'", ["Ada"]),
    ("SELECT LastName FROM Contact WHERE Email LIKE '%@example.com' ORDER BY LastName DESC", ["Babbage", "Ada"]),
    ("SELECT LastName FROM Contact WHERE NOT Email LIKE 'ada%'", ["Babbage", "Curie"]),
    ("SELECT LastName FROM Contact WHERE Email != null AND (LastName = 'Ada' OR LastName = 'Curie')", ["Ada"]),
    ("SELECT LastName FROM Contact WHERE LastName NOT IN ('Ada', 'Babbage')", ["Curie"]),
    ("SELECT LastName FROM Contact WHERE Email = ''", ["Curie"]),
    ("SELECT LastName FROM Contact WHERE LastName > 'b' ORDER BY LastName", ["Babbage", "Curie"]),
    ("SELECT LastName FROM Contact WHERE Title LIKE '100\\% sure'", ["Babbage"]),
    ("SELECT LastName FROM Contact ORDER BY Email NULLS LAST, LastName LIMIT 2", ["Ada", "Babbage"]),
    ("SELECT LastName FROM Contact WHERE SystemModstamp > 2000-01-01T00:00:00Z ORDER BY SystemModstamp, Id", ["Ada", "Babbage", "Curie"]),
]


@pytest.mark.parametrize("soql, expected", ACCEPTED, ids=[a[0][:60] for a in ACCEPTED])
def test_queries_inside_the_subset_answer_as_salesforce(fake, sf, soql, expected):
    load(fake, "Contact", [{"LastName": "Ada", "Email": "ada@example.com"},
                           {"LastName": "Babbage", "Email": "charles@example.com", "Title": "100% sure"},
                           {"LastName": "Curie", "Email": None, "Title": "100 percent"}])
    assert [r["LastName"] for r in sf.query(soql)["records"]] == expected


def test_case_insensitive_names_come_back_canonical(fake, sf):
    load(fake, "Contact", [{"LastName": "Ada"}])
    rec = sf.query("select id, lastname from CONTACT")["records"][0]
    assert list(rec) == ["attributes", "Id", "LastName"]
    assert rec["attributes"]["type"] == "Contact"


def test_missing_query_string(fake, token):
    resp = http_session(fake).get(fake.https + "/services/data/v59.0/query/",
                                  headers={"Authorization": "Bearer " + token["access_token"]})
    assert resp.status_code == 400 and resp.json()[0]["errorCode"] == "MALFORMED_QUERY"


def test_users_groups_and_organization_are_queryable(fake, sf, state):
    fake.control("POST", "/_fake/queues", {"name": "Inbound Leads", "email": "inbound@example.com"})
    users = sf.query("SELECT Id, Name, Email, IsActive, UserType FROM User")["records"]
    assert [(u["Id"], u["Name"], u["IsActive"], u["UserType"]) for u in users] == [
        (state["adminUserId"], "Ada Admin", True, "Standard")]
    queues = sf.query("SELECT Id, Name, Email FROM Group WHERE Type = 'Queue'")["records"]
    assert [(q["Name"], q["Email"]) for q in queues] == [("Inbound Leads", "inbound@example.com")]
    assert queues[0]["Id"].startswith("00G")
    fake.control("POST", "/_fake/config", {"org_name": "Renamed Org"})
    org = sf.query("SELECT Id, Name FROM Organization")["records"][0]
    assert org["Id"] == state["orgId"] and org["Name"] == "Renamed Org"
