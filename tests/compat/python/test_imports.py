"""`crm.imports`: CSV imports through `POST /crm/v3/imports/` (multipart), polled until done,
with their rejected rows from `public_imports_api.get_errors`."""

import datetime
import json
import time
import urllib.error
import urllib.request
import uuid

import pytest
from hubspot.crm.imports.exceptions import ApiException as ImportsApiException
from hubspot.crm.objects.exceptions import NotFoundException

from helpers import create, expect_status, unique

CONTACTS = "0-1"
COMPANIES = "0-2"


def mapping(type_id, column, prop, id_type=None):
    m = {"columnObjectTypeId": type_id, "columnName": column, "propertyName": prop}
    if id_type:
        m["idColumnType"] = id_type
    return m


def import_request(name, file_name, operations, mappings):
    return json.dumps(
        {
            "name": name,
            "dateFormat": "YEAR_MONTH_DAY",
            "marketableContactImport": False,
            "importOperations": operations,
            "files": [
                {
                    "fileName": file_name,
                    "fileFormat": "CSV",
                    "fileImportPage": {"hasHeader": True, "columnMappings": mappings},
                }
            ],
        }
    )


def write_csv(tmp_path, name, lines):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def start_import(client, path, request):
    res = client.crm.imports.core_api.create(files=path, import_request=request)
    assert res is not None, "create did not answer with its declared status (200)"
    return res


def wait_done(client, import_id, timeout=60.0):
    """Polls get_by_id until the import has finished; returns the finished import."""
    deadline = time.monotonic() + timeout
    while True:
        imp = client.crm.imports.core_api.get_by_id(import_id)
        assert imp.state in ("STARTED", "PROCESSING", "DONE", "FAILED", "CANCELED"), imp.state
        if imp.state not in ("STARTED", "PROCESSING"):
            return imp
        assert time.monotonic() < deadline, f"import {import_id} still {imp.state}"
        time.sleep(0.1)


def run_import(client, tmp_path, file_name, lines, operations, mappings, name=None):
    path = write_csv(tmp_path, file_name, lines)
    request = import_request(name or unique("import "), file_name, operations, mappings)
    started = start_import(client, path, request)
    done = wait_done(client, started.id)
    assert done.state == "DONE", (done.state, done)
    return done


def all_errors(client, import_id, **kwargs):
    res = client.crm.imports.public_imports_api.get_errors(import_id, **kwargs)
    assert res.paging is None
    return res.results


def contact_by_email(client, email, properties=("email", "firstname", "lastname", "annualrevenue", "hubspot_owner_id")):
    return client.crm.objects.basic_api.get_by_id(
        "contacts", email, properties=list(properties), id_property="email"
    )


def owner_id_of(account, client):
    email = f"{unique('owner')}@example.com"
    account.create_user(email, "Olive", "Owner")
    owners = client.crm.owners.owners_api.get_page(email=email).results
    assert len(owners) == 1
    return owners[0].id


CONTACT_MAPPINGS = [
    mapping(CONTACTS, "Email", "email", "HUBSPOT_ALTERNATE_ID"),
    mapping(CONTACTS, "First Name", "firstname"),
    mapping(CONTACTS, "Last Name", "lastname"),
    mapping(CONTACTS, "Annual Revenue", "annualrevenue"),
    mapping(CONTACTS, "Owner", "hubspot_owner_id"),
]


@pytest.fixture
def contacts_import(account, client, tmp_path):
    """An UPSERT of contacts keyed by e-mail: two new, one existing updated, three rejected."""
    owner = owner_id_of(account, client)
    existing_email = f"{unique('existing')}@example.com"
    existing = create(
        client,
        "contacts",
        {"email": existing_email, "firstname": "Old", "lastname": "Keep", "annualrevenue": "1"},
    )
    e = {k: f"{unique(k)}@example.com" for k in ("new1", "new2", "new3", "new4")}
    lines = [
        "Email,First Name,Last Name,Annual Revenue,Owner",  # line 1
        f"{e['new1']},Ann,Alpha,100,{owner}",  # 2: created
        f"{existing_email},New,,250,",  # 3: updated; the empty last name is left alone
        "not-an-email,Bad,Email,5,",  # 4: INVALID_EMAIL
        f"{e['new2']},Cy,Gamma,abc,",  # 5: COULD_NOT_PARSE_NUMBER
        f"{e['new3']},Dee,Delta,7,987654321",  # 6: COULD_NOT_FIND_OWNER
        f"{e['new4']},Eve,,,",  # 7: created
    ]
    path = write_csv(tmp_path, "contacts.csv", lines)
    name = unique("May contacts ")
    started = start_import(
        client,
        path,
        import_request(name, "contacts.csv", {CONTACTS: "UPSERT"}, CONTACT_MAPPINGS),
    )
    return {
        "started": started,
        "name": name,
        "lines": lines,
        "emails": e,
        "existing": existing,
        "existing_email": existing_email,
        "owner": owner,
    }


def test_create_and_poll_upsert_by_email(client, contacts_import):
    started = contacts_import["started"]
    assert started.id.isdigit()
    assert started.state in ("STARTED", "PROCESSING", "DONE")
    assert started.mapped_object_type_ids == [CONTACTS]
    assert started.import_name == contacts_import["name"]
    assert started.import_source == "API"
    assert started.opt_out_import is False
    assert isinstance(started.created_at, datetime.datetime)
    assert started.import_request_json["importOperations"] == {CONTACTS: "UPSERT"}

    done = wait_done(client, started.id)
    assert done.state == "DONE"
    assert done.id == started.id
    assert done.updated_at >= done.created_at
    counters = done.metadata.counters
    assert counters["TOTAL_ROWS"] == 6
    assert counters["CREATED_OBJECTS"] == 2
    assert counters["UPDATED_OBJECTS"] == 1
    assert counters["ERRORS"] == 3
    assert isinstance(done.metadata.file_ids, list)
    assert done.metadata.object_lists == []

    e = contacts_import["emails"]
    new1 = contact_by_email(client, e["new1"])
    assert new1.properties["firstname"] == "Ann"
    assert new1.properties["lastname"] == "Alpha"
    assert new1.properties["annualrevenue"] == "100"
    assert new1.properties["hubspot_owner_id"] == contacts_import["owner"]
    new4 = contact_by_email(client, e["new4"])
    assert new4.properties["firstname"] == "Eve"
    assert new4.properties["lastname"] is None

    updated = contact_by_email(client, contacts_import["existing_email"])
    assert updated.id == contacts_import["existing"].id
    assert updated.properties["firstname"] == "New"
    assert updated.properties["lastname"] == "Keep"
    assert updated.properties["annualrevenue"] == "250"

    for rejected in (e["new2"], e["new3"]):
        with pytest.raises(NotFoundException):
            contact_by_email(client, rejected)
    everyone = client.crm.objects.basic_api.get_page("contacts", limit=100, properties=["email"])
    assert sorted(r.properties["email"] for r in everyone.results) == sorted(
        [contacts_import["existing_email"], e["new1"], e["new4"]]
    )


def test_get_errors_lists_rejected_rows(client, contacts_import):
    started = contacts_import["started"]
    wait_done(client, started.id)
    now_ms = int(time.time() * 1000) + 1000
    errors = all_errors(client, started.id, include_error_message=True, include_row_data=True)
    lines = contacts_import["lines"]
    by_line = {err.source_data.line_number: err for err in errors}
    assert sorted(by_line) == [4, 5, 6]
    expected = {4: "INVALID_EMAIL", 5: "COULD_NOT_PARSE_NUMBER", 6: "COULD_NOT_FIND_OWNER"}
    for line, err in by_line.items():
        assert err.error_type == expected[line], (line, err)
        assert isinstance(err.created_at, int)
        assert now_ms - 600_000 < err.created_at < now_ms
        assert err.id
        assert err.object_type == "CONTACT"
        assert err.source_data.row_data == lines[line - 1].split(","), line
        assert isinstance(err.error_message, str) and err.error_message
    assert by_line[4].invalid_value == "not-an-email"
    assert by_line[5].invalid_value == "abc"
    assert by_line[5].known_column_number == 4
    assert by_line[6].invalid_value == "987654321"
    assert "987654321" in by_line[6].error_message

    # Without the optional parts the rows still parse (rowData is required by the model).
    bare = all_errors(client, started.id, include_error_message=False, include_row_data=False)
    assert [x.id for x in bare] == [x.id for x in errors]
    for err in bare:
        assert err.error_message is None
        assert err.source_data.row_data == []
        assert err.source_data.line_number in (4, 5, 6)

    # Paging through the errors.
    first = client.crm.imports.public_imports_api.get_errors(started.id, limit=2)
    assert len(first.results) == 2
    rest = client.crm.imports.public_imports_api.get_errors(
        started.id, limit=2, after=first.paging.next.after
    )
    assert rest.paging is None
    assert [x.id for x in first.results + rest.results] == [x.id for x in errors]


def test_get_page_lists_newest_first_and_pages(client, tmp_path):
    names = []
    for i in range(3):
        name = unique(f"list {i} ")
        names.append(name)
        run_import(
            client,
            tmp_path,
            f"list{i}.csv",
            ["Email,First Name", f"{unique('l')}@example.com,L{i}"],
            {CONTACTS: "UPSERT"},
            CONTACT_MAPPINGS[:2],
            name=name,
        )
    page = client.crm.imports.core_api.get_page()
    assert [i.import_name for i in page.results] == names[::-1]
    assert all(i.state == "DONE" for i in page.results)
    assert page.paging is None or page.paging.next is None

    first = client.crm.imports.core_api.get_page(limit=2)
    assert [i.import_name for i in first.results] == names[:0:-1]
    after = first.paging.next.after
    assert isinstance(after, str) and after
    second = client.crm.imports.core_api.get_page(limit=2, after=after)
    assert [i.import_name for i in second.results] == names[:1]
    assert second.paging is None or second.paging.next is None


def test_create_with_record_ids_of_deleted_and_unknown_records(client, tmp_path):
    binned = create(client, "companies", {"name": "Binned Co", "domain": f"{unique('b')}.example.com"})
    live = create(client, "companies", {"name": "Live Co", "domain": f"{unique('l')}.example.com"})
    client.crm.objects.basic_api.archive("companies", binned.id)
    never = str(int(live.id) + 1_000_000)
    fresh_domain = f"{unique('fresh')}.example.com"
    lines = [
        "Record ID,Name,Domain",
        f"{binned.id},Binned Again,",  # 2: in the recycle bin
        f"{never},Never Issued,",  # 3: an ID this account never issued
        f",Fresh Co,{fresh_domain}",  # 4: created
        f"{live.id},Live Again,",  # 5: exists, and the import only creates
    ]
    mappings = [
        mapping(COMPANIES, "Record ID", "hs_object_id", "HUBSPOT_OBJECT_ID"),
        mapping(COMPANIES, "Name", "name"),
        mapping(COMPANIES, "Domain", "domain"),
    ]
    done = run_import(client, tmp_path, "companies.csv", lines, {COMPANIES: "CREATE"}, mappings)
    counters = done.metadata.counters
    assert (counters["CREATED_OBJECTS"], counters["UPDATED_OBJECTS"], counters["ERRORS"]) == (1, 0, 3)

    errors = {e.source_data.line_number: e for e in all_errors(client, done.id, include_error_message=True, include_row_data=True)}
    assert sorted(errors) == [2, 3, 5]
    assert "recycle bin" in errors[2].error_message
    assert errors[2].object_type == "COMPANY"
    assert errors[3].error_type == "INVALID_RECORD_ID"
    assert never in errors[3].error_message
    assert errors[5].error_type == "CREATE_ONLY_IMPORT"

    # Nothing came back from the recycle bin or was touched.
    with pytest.raises(NotFoundException):
        client.crm.objects.basic_api.get_by_id("companies", binned.id)
    assert client.crm.objects.basic_api.get_by_id("companies", live.id).properties["name"] == "Live Co"
    fresh = client.crm.objects.basic_api.get_by_id("companies", fresh_domain, id_property="domain")
    assert fresh.properties["name"] == "Fresh Co"
    assert fresh.id not in (binned.id, live.id, never)


def test_update_only_import_rejects_unknown_email(client, tmp_path):
    known = f"{unique('known')}@example.com"
    record = create(client, "contacts", {"email": known, "firstname": "Before"})
    unknown = f"{unique('unknown')}@example.com"
    lines = ["Email,First Name", f"{known},After", f"{unknown},Nobody"]
    done = run_import(
        client, tmp_path, "update.csv", lines, {CONTACTS: "UPDATE"}, CONTACT_MAPPINGS[:2]
    )
    counters = done.metadata.counters
    assert (counters["CREATED_OBJECTS"], counters["UPDATED_OBJECTS"], counters["ERRORS"]) == (0, 1, 1)
    (err,) = all_errors(client, done.id, include_error_message=True, include_row_data=True)
    assert err.error_type == "UPDATE_ONLY_IMPORT"
    assert err.source_data.line_number == 3
    assert err.source_data.row_data == [unknown, "Nobody"]
    got = contact_by_email(client, known)
    assert (got.id, got.properties["firstname"]) == (record.id, "After")
    with pytest.raises(NotFoundException):
        contact_by_email(client, unknown)


@pytest.mark.parametrize(
    "case",
    ["no import request", "no file", "two object types", "unknown property", "update without key", "not json"],
)
def test_bad_requests_answer_400(client, tmp_path, case):
    path = write_csv(tmp_path, "bad.csv", ["Email,First Name,Name", "a@example.com,A,Acme"])
    good = [mapping(CONTACTS, "Email", "email"), mapping(CONTACTS, "First Name", "firstname")]
    requests = {
        "two object types": import_request(
            "two", "bad.csv", {CONTACTS: "UPSERT", COMPANIES: "UPSERT"},
            good + [mapping(COMPANIES, "Name", "name")],
        ),
        "unknown property": import_request(
            "unknown", "bad.csv", {CONTACTS: "UPSERT"},
            good + [mapping(CONTACTS, "Name", "no_such_property")],
        ),
        "update without key": import_request(
            "update", "bad.csv", {CONTACTS: "UPDATE"},
            [mapping(CONTACTS, "Email", None), mapping(CONTACTS, "First Name", "firstname")],
        ),
        "not json": "{not json",
    }
    api = client.crm.imports.core_api
    if case == "no import request":
        call = lambda: api.create(files=path)
    elif case == "no file":
        call = lambda: api.create(import_request=import_request("nofile", "bad.csv", {CONTACTS: "UPSERT"}, good))
    else:
        call = lambda: api.create(files=path, import_request=requests[case])
    with pytest.raises(ImportsApiException):
        call()
    body = expect_status(400, call)
    assert body["category"] == "VALIDATION_ERROR"
    if case == "unknown property":
        assert "no_such_property" in body["message"]
    # Nothing was queued.
    assert client.crm.imports.core_api.get_page().results == []


def test_get_unknown_import_is_404(client):
    expect_status(404, lambda: client.crm.imports.core_api.get_by_id(987654))
    expect_status(404, lambda: client.crm.imports.public_imports_api.get_errors(987654))
    expect_status(404, lambda: client.crm.imports.core_api.cancel(987654))


def test_imports_of_another_account_are_invisible(client, other_account, tmp_path):
    done = run_import(
        client, tmp_path, "mine.csv", ["Email,First Name", f"{unique('m')}@example.com,M"],
        {CONTACTS: "UPSERT"}, CONTACT_MAPPINGS[:2],
    )
    other = other_account.client
    expect_status(404, lambda: other.crm.imports.core_api.get_by_id(done.id))
    assert other.crm.imports.core_api.get_page().results == []


def test_cancel_finished_import_is_409(client, tmp_path):
    done = run_import(
        client, tmp_path, "one.csv", ["Email,First Name", f"{unique('c')}@example.com,C"],
        {CONTACTS: "UPSERT"}, CONTACT_MAPPINGS[:2],
    )
    with pytest.raises(ImportsApiException) as info:
        client.crm.imports.core_api.cancel(done.id)
    assert info.value.status == 409
    body = expect_status(409, lambda: client.crm.imports.core_api.cancel(done.id))
    assert body["category"] == "CONFLICT"
    assert client.crm.imports.core_api.get_by_id(done.id).state == "DONE"


def test_cancel_running_import(client, tmp_path):
    rows = 40_000
    marker = unique("big")
    lines = ["Email,First Name"] + [f"{marker}{i}@example.com,Row{i}" for i in range(rows)]
    path = write_csv(tmp_path, "big.csv", lines)
    started = start_import(
        client, path, import_request(marker, "big.csv", {CONTACTS: "CREATE"}, CONTACT_MAPPINGS[:2])
    )
    # Cancel once the job has committed its first batches.
    deadline = time.monotonic() + 60
    while True:
        running = client.crm.imports.core_api.get_by_id(started.id)
        assert running.state in ("STARTED", "PROCESSING"), f"finished before it could be canceled: {running.metadata.counters}"
        if running.metadata.counters["PROCESSED_ROWS"] > 0:
            break
        assert time.monotonic() < deadline
        time.sleep(0.02)
    res = client.crm.imports.core_api.cancel(started.id)
    assert res.status == "COMPLETE"
    assert isinstance(res.started_at, datetime.datetime)
    assert isinstance(res.completed_at, datetime.datetime)

    canceled = client.crm.imports.core_api.get_by_id(started.id)
    assert canceled.state == "CANCELED"
    time.sleep(1.0)  # a batch that was being written when the cancel came must not land after it
    final = client.crm.imports.core_api.get_by_id(started.id)
    assert final.state == "CANCELED"
    c = final.metadata.counters
    assert c["TOTAL_ROWS"] == rows
    assert 0 < c["PROCESSED_ROWS"] < rows
    assert (c["CREATED_OBJECTS"], c["UPDATED_OBJECTS"], c["ERRORS"]) == (c["PROCESSED_ROWS"], 0, 0)
    assert final.metadata.counters == canceled.metadata.counters

    # The records that exist are exactly the ones counted as created.
    from hubspot.crm.objects import PublicObjectSearchRequest

    found = client.crm.objects.search_api.do_search(
        "contacts", PublicObjectSearchRequest(filter_groups=[], limit=1)
    )
    assert found.total == c["CREATED_OBJECTS"]
    # Canceling a canceled import again is harmless.
    again = client.crm.imports.core_api.cancel(started.id)
    assert again.status == "COMPLETE"
    assert client.crm.imports.core_api.get_by_id(started.id).state == "CANCELED"

def raw(account, method, path, body=None, headers=None):
    """A request the clients cannot make (a body that is not multipart, a bad query)."""
    req = urllib.request.Request(
        account.server.base_url + path,
        data=body,
        method=method,
        headers={"Authorization": f"Bearer {account.token}", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers.get("Content-Type", ""), json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), json.loads(e.read() or b"null")


def test_malformed_requests_get_the_error_envelope(account, client, tmp_path):
    done = run_import(
        client, tmp_path, "q.csv", ["Email,First Name", f"{unique('q')}@example.com,Q"],
        {CONTACTS: "UPSERT"}, CONTACT_MAPPINGS[:2],
    )
    cases = [
        ("POST", "/crm/v3/imports/", b'{"name": "json"}', {"Content-Type": "application/json"}),
        ("POST", "/crm/v3/imports/", b"", {}),
        ("GET", "/crm/v3/imports/?limit=abc", None, {}),
        ("GET", "/crm/v3/imports/?after=xyz", None, {}),
        ("GET", f"/crm/v3/imports/{done.id}/errors?includeRowData=maybe", None, {}),
        ("GET", f"/crm/v3/imports/{done.id}/errors?limit=-1", None, {}),
    ]
    for method, path, body, headers in cases:
        status, content_type, got = raw(account, method, path, body, headers)
        assert status == 400, (path, status, got)
        assert "application/json" in content_type, (path, content_type)
        assert got["category"] == "VALIDATION_ERROR", (path, got)
        uuid.UUID(got["correlationId"])
    # Without and with the trailing slash the clients use.
    for path in ("/crm/v3/imports", "/crm/v3/imports/"):
        status, _, got = raw(account, "GET", path)
        assert status == 200 and [i["id"] for i in got["results"]] == [done.id], (path, got)
