"""Webhooks as HubSpot's, part two: the events kontor POSTs to an app's target URL, checked
with the official client's own `Signature` helper: each kind of event, nothing from a
rolled-back write, retries, and delivery at least once across a crash of the server. Events go
to `webhook_receiver.py`, run as a process of its own.

Not covered: `*.restore`, because records come back from the recycle bin only through the
console."""

import json
import time

import pytest
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputForCreate,
    PublicGdprDeleteInput,
    PublicMergeInput,
    SimplePublicObjectBatchInputForCreate,
    SimplePublicObjectInput,
)
from hubspot.crm.contacts.exceptions import ApiException as ContactsApiException
from hubspot.webhooks import SubscriptionPatchRequest

from conftest import create_account, running
from helpers import (
    create,
    make_client,
    unique,
)
from webhooks_support import (  # noqa: F401 (`receivers` is a fixture)
    wait_until,
    receivers,
    kontor,
    create_app,
    hooks,
    subscribe,
    event_log,
    assert_signed,
    contact,
)


# ---- 2. the events ----


def matches(event: dict, want: dict) -> bool:
    return all(event.get(k) == v for k, v in want.items())


def test_each_kind_of_change_is_delivered_signed(account, receivers):
    client = account.client
    before = contact(client, email=f"{unique('before')}@example.com")
    rx = receivers()
    app = create_app(account, rx.url)
    app_id = int(app["id"])
    subs = {
        t: subscribe(account, app_id, t, "email" if t.endswith("propertyChange") else None)
        for t in (
            "contact.creation",
            "contact.propertyChange",
            "contact.associationChange",
            "company.associationChange",
            "contact.merge",
            "contact.deletion",
            "contact.privacyDeletion",
        )
    }
    want = []

    def created(c, email):
        want.append({"subscriptionType": "contact.creation", "objectId": int(c.id), "changeFlag": "NEW"})
        want.append({
            "subscriptionType": "contact.propertyChange", "objectId": int(c.id),
            "propertyName": "email", "propertyValue": email,
        })

    # Creation, and the e-mail it was created with; then a change of the e-mail.
    e1 = f"{unique('one')}@example.com"
    c1 = contact(client, email=e1, firstname="Ada")
    created(c1, e1)
    e2 = f"{unique('two')}@example.com"
    client.crm.contacts.basic_api.update(c1.id, SimplePublicObjectInput(properties={"email": e2}))
    want.append({
        "subscriptionType": "contact.propertyChange", "objectId": int(c1.id),
        "propertyName": "email", "propertyValue": e2,
    })
    # A change of another property is not subscribed to.
    client.crm.contacts.basic_api.update(c1.id, SimplePublicObjectInput(properties={"firstname": "Augusta"}))

    # An association, told from both sides, made and removed.
    co = create(client, "companies", {"name": "Analytical Engines"})
    client.crm.associations.v4.basic_api.create_default("contacts", c1.id, "companies", co.id)
    client.crm.associations.v4.basic_api.archive("contacts", c1.id, "companies", co.id)
    for removed in (False, True):
        want.append({
            "subscriptionType": "contact.associationChange", "objectId": int(c1.id),
            "associationType": "CONTACT_TO_COMPANY", "fromObjectId": int(c1.id),
            "toObjectId": int(co.id), "associationRemoved": removed,
            "associationTypeId": 279, "isPrimaryAssociation": False,
        })
        want.append({
            "subscriptionType": "company.associationChange", "objectId": int(co.id),
            "associationType": "COMPANY_TO_CONTACT", "fromObjectId": int(co.id),
            "toObjectId": int(c1.id), "associationRemoved": removed,
            "associationTypeId": 280, "isPrimaryAssociation": False,
        })

    # A merge, told of the primary.
    e3, e4 = f"{unique('three')}@example.com", f"{unique('four')}@example.com"
    c2 = contact(client, email=e3)
    c3 = contact(client, email=e4, lastname="Lovelace")
    created(c2, e3)
    created(c3, e4)
    client.crm.contacts.basic_api.merge(PublicMergeInput(primary_object_id=c2.id, object_id_to_merge=c3.id))
    want.append({
        "subscriptionType": "contact.merge", "objectId": int(c2.id),
        "primaryObjectId": int(c2.id), "mergedObjectIds": [int(c3.id)], "newObjectId": int(c2.id),
    })

    # A deletion (to the recycle bin), and a GDPR deletion (a privacy deletion, and a deletion).
    client.crm.contacts.basic_api.archive(c1.id)
    want.append({"subscriptionType": "contact.deletion", "objectId": int(c1.id), "changeFlag": "DELETED"})
    # An erasure takes the contact's events, sent or not, out of the log, with their values:
    # here the contact's creation is sent before it is erased.
    e5 = f"{unique('five')}@example.com"
    c4 = contact(client, email=e5)
    created(c4, e5)

    def missing():
        got = rx.events()
        return [w for w in want if not any(matches(e, w) for e in got)]

    def arrived():
        return wait_until(
            lambda: not missing(),
            lambda: f"the events {missing()}; received {rx.events()}; logged {event_log(account, app_id)}",
        )

    arrived()
    erased_ids = {e["eventId"] for e in rx.events() if e["objectId"] == int(c4.id)}
    assert len(erased_ids) == 2
    client.crm.contacts.basic_api.purge(PublicGdprDeleteInput(object_id=c4.id))
    want.append({"subscriptionType": "contact.privacyDeletion", "objectId": int(c4.id), "changeFlag": "DELETED"})
    want.append({"subscriptionType": "contact.deletion", "objectId": int(c4.id), "changeFlag": "DELETED"})
    arrived()
    events = rx.events()
    assert_signed(rx, app["clientSecret"])

    # Each event once (nothing failed, so nothing was sent again), with HubSpot's fields.
    ids = [e["eventId"] for e in events]
    assert len(ids) == len(set(ids)), ids
    now_ms = time.time() * 1000
    for e in events:
        assert e["portalId"] == account.id and e["appId"] == app_id
        assert e["subscriptionId"] == int(subs[e["subscriptionType"]].id)
        assert e["attemptNumber"] == 0
        assert isinstance(e["occurredAt"], int) and now_ms - 120_000 < e["occurredAt"] <= now_ms + 5000
        assert isinstance(e["changeSource"], str) and e["changeSource"]
        # Nothing about the contact from before the app existed.
        assert int(before.id) not in (e["objectId"], e.get("fromObjectId"), e.get("toObjectId")), e
    merge = next(e for e in events if e["subscriptionType"] == "contact.merge")
    assert isinstance(merge["numberOfPropertiesMoved"], int) and merge["numberOfPropertiesMoved"] >= 0
    # Each change a user made, and no other, was sent.
    unexpected = [e for e in events if not any(matches(e, w) for w in want)]
    assert not unexpected, unexpected
    # The app's log holds the same events, all delivered at the first attempt.
    kept = [i for i in ids if i not in erased_ids]
    log = wait_until(
        lambda: (lambda l: l if len(l) == len(kept) and all(x["state"] == "DELIVERED" for x in l) else None)(
            event_log(account, app_id)
        ),
        "the log to show every event delivered",
    )
    assert sorted(int(x["eventId"]) for x in log) == sorted(kept)
    assert e5 not in json.dumps(log)
    assert all(x["attempts"] == 1 and x["lastStatus"] == 200 for x in log)
    newest_first = [int(x["eventId"]) for x in log]
    assert newest_first == sorted(newest_first, reverse=True)
    by_id = {e["eventId"]: e for e in events}
    for x in log:
        sent = dict(by_id[int(x["eventId"])])
        sent.pop("attemptNumber")
        assert x["payload"] == sent
        assert x["subscriptionType"] == sent["subscriptionType"] and int(x["objectId"]) == sent["objectId"]
    counts = kontor(account, "GET", f"/kontor/v1/webhooks/apps/{app_id}").json()["events"]
    assert counts == {"pending": 0, "delivered": len(kept), "failed": 0}


def test_a_subscription_turned_off_sends_nothing(account, receivers):
    rx = receivers()
    app = create_app(account, rx.url)
    app_id = int(app["id"])
    wh = hooks(account)
    off = subscribe(account, app_id, "contact.propertyChange", "firstname")
    wh.subscriptions_api.update(int(off.id), app_id, SubscriptionPatchRequest(active=False))
    subscribe(account, app_id, "contact.creation")
    c = contact(account.client, firstname="Quiet")
    wait_until(lambda: rx.events(), "the creation event")
    events = rx.events()
    assert [(e["subscriptionType"], e["objectId"]) for e in events] == [("contact.creation", int(c.id))]


# ---- 3. a write that is rolled back ----


def test_a_rolled_back_batch_sends_nothing(account, receivers):
    client = account.client
    taken = f"{unique('taken')}@example.com"
    contact(client, email=taken)
    rx = receivers()
    app = create_app(account, rx.url)
    app_id = int(app["id"])
    subscribe(account, app_id, "contact.creation")
    subscribe(account, app_id, "contact.propertyChange", "email")

    fresh = [f"{unique('new')}@example.com" for _ in range(2)]
    with pytest.raises(ContactsApiException) as e:
        client.crm.contacts.batch_api.create(
            BatchInputSimplePublicObjectBatchInputForCreate(
                inputs=[
                    SimplePublicObjectBatchInputForCreate(properties={"email": fresh[0]}, associations=[]),
                    SimplePublicObjectBatchInputForCreate(properties={"email": taken}, associations=[]),
                    SimplePublicObjectBatchInputForCreate(properties={"email": fresh[1]}, associations=[]),
                ]
            )
        )
    assert e.value.status == 409, e.value.body
    for email in fresh:
        with pytest.raises(ContactsApiException) as e:
            client.crm.contacts.basic_api.get_by_id(email, id_property="email")
        assert e.value.status == 404

    after = f"{unique('after')}@example.com"
    c = contact(client, email=after)
    wait_until(
        lambda: {e["subscriptionType"] for e in rx.events()} >= {"contact.creation", "contact.propertyChange"},
        "the events of the write after the failed one",
    )
    events = rx.events()
    assert sorted((e["subscriptionType"], e["objectId"]) for e in events) == [
        ("contact.creation", int(c.id)), ("contact.propertyChange", int(c.id)),
    ]
    assert [e["propertyValue"] for e in events if "propertyValue" in e] == [after]
    assert len(event_log(account, app_id)) == 2
    assert_signed(rx, app["clientSecret"])


# ---- 4. retries ----


def test_a_failing_target_gets_the_same_events_again(account, receivers):
    rx = receivers(fail_first=2, fail_status=500)
    app = create_app(account, rx.url)
    app_id = int(app["id"])
    subscribe(account, app_id, "contact.creation")
    c = contact(account.client, email=f"{unique('retry')}@example.com")

    wait_until(lambda: len(rx.requests()) >= 3, "three attempts")
    log = wait_until(
        lambda: (lambda l: l if l and l[0]["state"] == "DELIVERED" else None)(event_log(account, app_id)),
        "the event to be delivered",
    )
    requests = rx.requests()
    assert [r["status"] for r in requests] == [500, 500, 200]
    sent = [json.loads(r["body"]) for r in requests]
    assert [[e["eventId"] for e in batch] for batch in sent] == [[log[0]["payload"]["eventId"]]] * 3
    assert [batch[0]["attemptNumber"] for batch in sent] == [0, 1, 2]
    assert all(batch[0]["objectId"] == int(c.id) for batch in sent)
    # Apart from the attempt number, the same event each time.
    same = [{k: v for k, v in batch[0].items() if k != "attemptNumber"} for batch in sent]
    assert same[0] == same[1] == same[2]
    # Each retry waited (a back-off from 200 ms), and each was signed afresh.
    assert requests[1]["at"] - requests[0]["at"] > 0.1
    assert requests[2]["at"] - requests[1]["at"] > 0.1
    assert_signed(rx, app["clientSecret"])
    assert len(log) == 1
    assert log[0]["attempts"] == 3 and log[0]["lastStatus"] == 200 and log[0]["lastError"] is None
    assert log[0]["completedAt"]


def test_a_refused_event_fails_at_once_and_can_be_sent_again(account, receivers):
    rx = receivers()
    rx.answer(400)
    app = create_app(account, rx.url)
    app_id = int(app["id"])
    subscribe(account, app_id, "contact.creation")
    c = contact(account.client, email=f"{unique('refused')}@example.com")

    failed = wait_until(lambda: event_log(account, app_id, state="FAILED"), "the event to fail")
    assert len(failed) == 1
    assert failed[0]["attempts"] == 1 and failed[0]["lastStatus"] == 400
    assert "400" in failed[0]["lastError"]
    assert int(failed[0]["objectId"]) == int(c.id)
    assert event_log(account, app_id, state="PENDING") == []
    # Not retried: a 4xx is the receiver's refusal (retries here would come within a second).
    time.sleep(1.0)
    assert len(rx.requests()) == 1
    counts = kontor(account, "GET", f"/kontor/v1/webhooks/apps/{app_id}").json()["events"]
    assert counts == {"pending": 0, "delivered": 0, "failed": 1}

    rx.answer(200)
    r = kontor(account, "POST", f"/kontor/v1/webhooks/apps/{app_id}/events/retry")
    assert r.status_code == 200 and r.json() == {"retried": 1}
    delivered = wait_until(
        lambda: event_log(account, app_id, state="DELIVERED"), "the event sent again to be delivered"
    )
    assert [x["eventId"] for x in delivered] == [failed[0]["eventId"]]
    assert delivered[0]["lastStatus"] == 200
    requests = rx.requests()
    assert [r["status"] for r in requests] == [400, 200]
    assert [json.loads(r["body"])[0]["eventId"] for r in requests] == [int(failed[0]["eventId"])] * 2
    assert_signed(rx, app["clientSecret"])
    assert event_log(account, app_id, state="FAILED") == []
    r = kontor(account, "POST", f"/kontor/v1/webhooks/apps/{app_id}/events/retry")
    assert r.json() == {"retried": 0}
    r = kontor(account, "GET", f"/kontor/v1/webhooks/apps/{app_id}/events?state=LOST")
    assert r.status_code == 400


# ---- 5. a crash while sending ----


def test_a_crash_mid_delivery_loses_nothing(receivers):
    env = {"KONTOR_WEBHOOKS_CLAIM_SECONDS": "3", "KONTOR_WEBHOOKS_TIMEOUT_SECONDS": "2"}
    with running(env=env) as srv:
        account = create_account(srv)
        rx = receivers(stall_first=4.0)
        app = create_app(account, rx.url)
        app_id = int(app["id"])
        subscribe(account, app_id, "contact.creation")
        first = account.client.crm.contacts.batch_api.create(
            BatchInputSimplePublicObjectBatchInputForCreate(
                inputs=[
                    SimplePublicObjectBatchInputForCreate(properties={"firstname": f"C{i}"}, associations=[])
                    for i in range(5)
                ]
            )
        ).results
        # The first request has arrived, and is held: kontor dies waiting for the answer.
        stalled = wait_until(lambda: rx.requests(), "the first request")[0]
        srv.kill()
        assert time.time() - stalled["at"] < 2.0, "the server was killed after its request timed out"
        held = {e["eventId"] for e in json.loads(stalled["body"])}
        assert held

        srv.start()
        account.client = make_client(srv.base_url, account.token)
        more = [contact(account.client, firstname=f"D{i}") for i in range(2)]
        want = {int(c.id) for c in first + more}

        def all_arrived():
            got = rx.events()
            return (
                {e["objectId"] for e in got} >= want
                and held <= {e["eventId"] for r in rx.requests()[1:] for e in json.loads(r["body"])}
            )

        wait_until(all_arrived, "every event, the held ones again", timeout=20)
        log = wait_until(
            lambda: (lambda l: l if len(l) == len(want) and all(x["state"] == "DELIVERED" for x in l) else None)(
                event_log(account, app_id)
            ),
            "the log to show every event delivered",
        )
        events = rx.events()
        ids = [e["eventId"] for e in events]
        # At least once: the held events came twice, with the same ids; none lost, none extra.
        assert any(ids.count(i) >= 2 for i in held)
        assert sorted(set(ids)) == sorted(int(x["eventId"]) for x in log)
        assert sorted(e["objectId"] for e in {e["eventId"]: e for e in events}.values()) == sorted(want)
        assert all(e["subscriptionType"] == "contact.creation" for e in events)
        assert_signed(rx, app["clientSecret"])
