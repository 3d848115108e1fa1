"""The engagements v1 API and the contact lists v1 API, which sync tools call through the
client's generic `api_request`: notes, calls, tasks, meetings and e-mails made with the
generated v3 APIs, read back as v1 engagements."""

from datetime import datetime, timezone

from hubspot.crm.objects import AssociationSpec, PublicAssociationsForObject
from hubspot.crm.objects import PublicObjectId

from helpers import create

AT = "2024-05-01T10:00:00.000Z"
AT_MS = int(datetime(2024, 5, 1, 10, tzinfo=timezone.utc).timestamp() * 1000)


def call(client, path, qs=None):
    options = {"method": "GET", "path": path}
    if qs:
        options["qs"] = qs
    return client.api_request(options)


def to(record, type_id):
    return PublicAssociationsForObject(
        to=PublicObjectId(id=record.id),
        types=[AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=type_id)],
    )


def ms(when):
    return int(when.timestamp() * 1000)


def all_pages(client, limit):
    pages, offset = [], None
    while True:
        qs = {"limit": limit}
        if offset is not None:
            qs["offset"] = offset
        r = call(client, "/engagements/v1/engagements/paged", qs)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["results"]) <= limit
        pages.append(page)
        offset = page["offset"]
        if not page["hasMore"]:
            return pages
        assert len(pages) < 100, "paging does not end"


def test_paging_visits_every_engagement_once_with_its_associations(client):
    contact = create(client, "contacts", {"email": "ada@engagements.example"})
    company = create(client, "companies", {"name": "Analytical Engines"})
    made = {}
    for i in range(2):
        for object_type, props, assoc in [
            ("notes", {"hs_note_body": f"note {i}"}, [to(contact, 202), to(company, 190)]),
            ("calls", {"hs_call_title": f"call {i}", "hs_call_duration": "60000"}, [to(contact, 194)]),
            ("tasks", {"hs_task_subject": f"task {i}", "hs_task_status": "NOT_STARTED"}, [to(company, 192)]),
            ("meetings", {"hs_meeting_title": f"meeting {i}"}, [to(contact, 200)]),
            ("emails", {"hs_email_subject": f"email {i}"}, [to(contact, 198)]),
        ]:
            r = create(client, object_type, {"hs_timestamp": AT, **props}, associations=assoc)
            made[int(r.id)] = (object_type, r)
        # A record that is not an engagement, between them.
        create(client, "contacts", {"firstname": f"between {i}"})

    pages = all_pages(client, 3)
    seen = [e for p in pages for e in p["results"]]
    ids = [e["engagement"]["id"] for e in seen]
    assert ids == sorted(made), "every engagement once, in id order"
    assert len(pages) == 4 and all(p["total"] == 10 for p in pages)
    kinds = {"notes": "NOTE", "calls": "CALL", "tasks": "TASK", "meetings": "MEETING", "emails": "EMAIL"}
    for e in seen:
        object_type, record = made[e["engagement"]["id"]]
        assert e["engagement"]["type"] == kinds[object_type]
        assert e["engagement"]["timestamp"] == AT_MS
        assert e["engagement"]["createdAt"] == ms(record.created_at)
        assert e["engagement"]["lastUpdated"] == ms(record.updated_at)
        assert e["attachments"] == []
        assoc = e["associations"]
        assert set(assoc) >= {"contactIds", "companyIds", "dealIds", "ownerIds", "workflowIds", "ticketIds"}
        if object_type == "tasks":
            assert assoc["contactIds"] == [] and assoc["companyIds"] == [int(company.id)]
        elif object_type == "notes":
            assert assoc["contactIds"] == [int(contact.id)] and assoc["companyIds"] == [int(company.id)]
        else:
            assert assoc["contactIds"] == [int(contact.id)] and assoc["companyIds"] == []
        if object_type == "calls":
            assert e["metadata"]["durationMilliseconds"] == 60000
            assert e["metadata"]["title"].startswith("call ")


def test_an_engagement_is_read_with_its_type_metadata(account):
    client = account.client
    owner_user = account.create_user("owner@engagements.example", "Grace", "Hopper")
    owner = next(o for o in client.crm.owners.owners_api.get_page().results if o.user_id == owner_user)
    meeting = create(
        client,
        "meetings",
        {
            "hs_timestamp": AT,
            "hs_meeting_title": "Demo",
            "hs_meeting_body": "<p>Show the <b>mill</b></p>",
            "hs_meeting_start_time": AT,
            "hs_meeting_end_time": "2024-05-01T11:00:00Z",
            "hubspot_owner_id": owner.id,
        },
    )
    r = call(client, f"/engagements/v1/engagements/{meeting.id}")
    assert r.status_code == 200, r.text
    e = r.json()
    assert e["engagement"]["id"] == int(meeting.id)
    assert e["engagement"]["portalId"] == account.id
    assert e["engagement"]["type"] == "MEETING" and e["engagement"]["active"] is True
    assert e["engagement"]["ownerId"] == int(owner.id)
    assert e["engagement"]["bodyPreview"] == "Show the mill"
    assert e["metadata"] == {
        "title": "Demo",
        "body": "<p>Show the <b>mill</b></p>",
        "startTime": AT_MS,
        "endTime": AT_MS + 3_600_000,
    }

    email = create(
        client,
        "emails",
        {"hs_timestamp": AT, "hs_email_subject": "Re: plans", "hs_email_text": "Thanks", "hs_email_direction": "INCOMING_EMAIL"},
    )
    e = call(client, f"/engagements/v1/engagements/{email.id}").json()
    assert e["engagement"]["type"] == "INCOMING_EMAIL"
    assert e["metadata"]["subject"] == "Re: plans" and e["metadata"]["text"] == "Thanks"

    task = create(client, "tasks", {"hs_timestamp": AT, "hs_task_subject": "Send plans", "hs_task_status": "COMPLETED"})
    e = call(client, f"/engagements/v1/engagements/{task.id}").json()
    assert e["engagement"]["type"] == "TASK"
    assert e["metadata"] == {"subject": "Send plans", "status": "COMPLETED"}


def test_another_accounts_engagement_is_not_found(account, other_account):
    mine = create(account.client, "notes", {"hs_timestamp": AT, "hs_note_body": "mine"})
    # Ids are counted per account: the other account's note gets an id this one has not used.
    for i in range(4):
        create(other_account.client, "contacts", {"firstname": f"filler {i}"})
    theirs = create(other_account.client, "notes", {"hs_timestamp": AT, "hs_note_body": "theirs, not yours"})
    assert int(theirs.id) > int(mine.id)

    r = call(account.client, f"/engagements/v1/engagements/{theirs.id}")
    assert r.status_code == 404
    body = r.json()
    assert body["status"] == "error" and body["category"] == "OBJECT_NOT_FOUND"
    assert body["correlationId"] == r.headers["X-HubSpot-Correlation-Id"]
    assert "not yours" not in r.text

    listed = all_pages(account.client, 250)
    assert [e["engagement"]["id"] for p in listed for e in p["results"]] == [int(mine.id)]
    assert "not yours" not in str(listed)


def test_a_portal_without_contact_lists(client):
    r = call(client, "/contacts/v1/lists", {"count": 20})
    assert r.status_code == 200, r.text
    assert r.json() == {"lists": [], "offset": 0, "has-more": False}
    r = call(client, "/contacts/v1/lists/7")
    assert r.status_code == 404
    assert r.json()["category"] == "OBJECT_NOT_FOUND"
