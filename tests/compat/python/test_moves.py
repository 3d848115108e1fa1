"""An account moved to another region while the official client writes to it: every write
the client saw succeed is there afterwards, with the same ids, and a refusal during the move's
freeze is a 477 the client surfaces as an ApiException with Retry-After and HubSpot's body."""

import json
import threading
import time

from hubspot.crm.contacts import ApiException, SimplePublicObjectInputForCreate

from helpers import unique


def test_writes_during_a_move_are_kept(new_account):
    acct = new_account()
    stop = threading.Event()
    acked, refused, others = [], [], []

    def write():
        while not stop.is_set():
            email = f"{unique('mv')}@example.com"
            try:
                made = acct.client.crm.contacts.basic_api.create(
                    SimplePublicObjectInputForCreate(properties={"email": email})
                )
                acked.append((made.id, email))
            except ApiException as e:
                if e.status == 477:
                    refused.append(e)
                else:
                    others.append(e)

    writer = threading.Thread(target=write)
    writer.start()
    time.sleep(0.3)
    acct.server.cli("migration", "run", "--account", str(acct.id), "--to", "eu")
    time.sleep(0.3)
    stop.set()
    writer.join()

    assert not others, [(e.status, e.body) for e in others]
    assert len(acked) > 10
    for e in refused:
        assert e.headers.get("Retry-After"), e.headers
        assert json.loads(e.body)["category"] == "MIGRATION_IN_PROGRESS"
    for record_id, email in acked:
        got = acct.client.crm.contacts.basic_api.get_by_id(record_id, properties=["email"])
        assert got.properties["email"] == email
    listed = acct.server.cli("migration", "list", "--account", str(acct.id))
    assert "\teu\tdone\t" in listed, listed


def test_a_frozen_account_answers_477_with_retry_after(new_account):
    acct = new_account()
    acct.server.cli("admin", "account", "set-state", "--account", str(acct.id), "--state", "migrating")
    try:
        acct.client.crm.contacts.basic_api.get_page(limit=1)
        raise AssertionError("a migrating account answered")
    except ApiException as e:
        assert e.status == 477
        assert int(e.headers["Retry-After"]) > 0
        body = json.loads(e.body)
        assert body["category"] == "MIGRATION_IN_PROGRESS" and body["message"]
    finally:
        acct.server.cli("admin", "account", "set-state", "--account", str(acct.id), "--state", "active")
    assert acct.client.crm.contacts.basic_api.get_page(limit=1) is not None
