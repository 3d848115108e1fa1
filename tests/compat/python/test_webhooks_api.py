"""Webhooks as HubSpot's, part one: the settings and subscriptions of an app through the
official client's `webhooks` APIs (which authenticate with `?hapikey=`: kontor takes the
account's token there), kontor's own apps API, and the targets the operator allows.

Not covered: a token made by a non-admin user (403), because no such token can be made: only
admins make tokens, and a token stops working when its maker loses the role."""

import json

import pytest
from hubspot import HubSpot
from hubspot.webhooks import (
    BatchInputSubscriptionBatchUpdateRequest,
    SettingsChangeRequest,
    SubscriptionBatchUpdateRequest,
    SubscriptionCreateRequest,
    SubscriptionPatchRequest,
    ThrottlingSettings,
)
from hubspot.webhooks.exceptions import ApiException

from conftest import create_account, running
from helpers import (
    create,
    error_body,
    expect_status,
)
from webhooks_support import (  # noqa: F401 (`receivers` is a fixture)
    receivers,
    kontor,
    create_app,
    hooks,
    subscribe,
    contact,
)


# ---- 1. settings and subscriptions ----


def test_settings_and_subscriptions_through_the_official_client(account, other_account):
    app = create_app(account)
    app_id = int(app["id"])
    wh = hooks(account)
    target = "https://hooks.example.com/kontor?source=compat"

    # No target yet: no settings.
    with pytest.raises(ApiException) as e:
        wh.settings_api.get_all(app_id)
    assert e.value.status == 404
    error_body(e.value)

    settings = wh.settings_api.configure(
        app_id,
        SettingsChangeRequest(
            target_url=target, throttling=ThrottlingSettings(max_concurrent_requests=5)
        ),
    )
    assert settings.target_url == target
    assert settings.throttling.max_concurrent_requests == 5
    read = wh.settings_api.get_all(app_id)
    assert read.target_url == target and read.throttling.max_concurrent_requests == 5
    shown = kontor(account, "GET", f"/kontor/v1/webhooks/apps/{app_id}").json()
    assert shown["targetUrl"] == target and shown["maxConcurrentRequests"] == 5
    assert "clientSecret" not in shown
    with pytest.raises(ApiException) as e:
        wh.settings_api.configure(
            app_id,
            SettingsChangeRequest(
                target_url="ftp://hooks.example.com/",
                throttling=ThrottlingSettings(max_concurrent_requests=5),
            ),
        )
    assert e.value.status == 400
    assert error_body(e.value)["errors"][0]["in"] == "targetUrl"
    assert wh.settings_api.clear(app_id) is None
    with pytest.raises(ApiException) as e:
        wh.settings_api.get_all(app_id)
    assert e.value.status == 404
    assert kontor(account, "GET", f"/kontor/v1/webhooks/apps/{app_id}").json()["targetUrl"] is None

    # Subscriptions: create, read, list.
    created = subscribe(account, app_id, "contact.creation")
    email = subscribe(account, app_id, "contact.propertyChange", "email")
    deals = subscribe(account, app_id, "deal.deletion")
    got = wh.subscriptions_api.get_by_id(int(email.id), app_id)
    assert (got.id, got.event_type, got.property_name, got.active) == (
        email.id, "contact.propertyChange", "email", True,
    )
    listed = wh.subscriptions_api.get_all(app_id).results
    assert sorted((s.id, s.event_type) for s in listed) == sorted(
        [(created.id, "contact.creation"), (email.id, "contact.propertyChange"), (deals.id, "deal.deletion")]
    )

    # Update one, then several at once.
    off = wh.subscriptions_api.update(int(created.id), app_id, SubscriptionPatchRequest(active=False))
    assert off.id == created.id and off.active is False
    assert wh.subscriptions_api.get_by_id(int(created.id), app_id).active is False
    batch = wh.subscriptions_api.update_batch(
        app_id,
        BatchInputSubscriptionBatchUpdateRequest(
            inputs=[
                SubscriptionBatchUpdateRequest(id=int(created.id), active=True),
                SubscriptionBatchUpdateRequest(id=int(deals.id), active=False),
            ]
        ),
    )
    assert batch.status == "COMPLETE"
    assert sorted((s.id, s.active) for s in batch.results) == sorted(
        [(created.id, True), (deals.id, False)]
    )
    states = {s.id: s.active for s in wh.subscriptions_api.get_all(app_id).results}
    assert states == {created.id: True, email.id: True, deals.id: False}
    # An id that is no subscription: the others are still updated, the answer says which not.
    partial = wh.subscriptions_api.update_batch(
        app_id,
        BatchInputSubscriptionBatchUpdateRequest(
            inputs=[
                SubscriptionBatchUpdateRequest(id=int(email.id), active=True),
                SubscriptionBatchUpdateRequest(id=999999, active=True),
            ]
        ),
    )
    assert partial.num_errors == 1 and partial.errors[0].category == "OBJECT_NOT_FOUND"
    assert partial.errors[0].context == {"ids": ["999999"]}
    assert [(s.id, s.active) for s in partial.results] == [(email.id, True)]

    # Archive one.
    assert wh.subscriptions_api.archive(int(deals.id), app_id) is None
    with pytest.raises(ApiException) as e:
        wh.subscriptions_api.get_by_id(int(deals.id), app_id)
    assert e.value.status == 404
    assert sorted(s.id for s in wh.subscriptions_api.get_all(app_id).results) == sorted(
        [created.id, email.id]
    )

    # What kontor does not send, and property changes without a property it knows: 400.
    def refused(event_type, property_name=None):
        with pytest.raises(ApiException) as e:
            wh.subscriptions_api.create(
                app_id,
                SubscriptionCreateRequest(
                    event_type=event_type, property_name=property_name, active=True
                ),
            )
        assert e.value.status == 400, e.value.body
        return error_body(e.value)

    body = refused("conversation.creation")  # in HubSpot's list, but not one kontor sends
    assert body["category"] == "VALIDATION_ERROR" and "conversation.creation" in body["message"]
    assert "propertyName" in refused("contact.propertyChange")["message"]
    assert "nosuchproperty" in refused("contact.propertyChange", "nosuchproperty")["message"]
    # One the client's own list does not know either, sent as is.
    r = kontor(
        account, "POST", f"/webhooks/v3/{app_id}/subscriptions",
        {"eventType": "contact.teleport", "active": True},
    )
    assert r.status_code == 400 and r.json()["category"] == "VALIDATION_ERROR"
    assert len(wh.subscriptions_api.get_all(app_id).results) == 2

    # An app that does not exist, or is another account's: 404.
    for call in (
        lambda: wh.settings_api.get_all(999999),
        lambda: wh.subscriptions_api.get_all(999999),
        lambda: wh.subscriptions_api.get_by_id(999999, app_id),
        lambda: subscribe(account, 999999, "contact.creation"),
        lambda: hooks(other_account).subscriptions_api.get_all(app_id),
    ):
        expect_status(404, call)
    assert kontor(other_account, "GET", f"/kontor/v1/webhooks/apps/{app_id}").status_code == 404

    # A key that is no token: 401. The token as `hapikey` opens the webhooks API only.
    expect_status(401, lambda: hooks(account, key="kontor-pat-1-" + "0" * 64).settings_api.get_all(app_id))
    expect_status(401, lambda: hooks(account, key="wrong").subscriptions_api.get_all(app_id))
    base = account.server.base_url
    r = HubSpot(api_key=account.token, base_url=base).api_request(
        {"method": "GET", "path": "/crm/v3/objects/contacts"}
    )
    assert r.status_code == 401

    # kontor's app API lists and deletes apps.
    listed = kontor(account, "GET", "/kontor/v1/webhooks/apps").json()["results"]
    assert [a["id"] for a in listed] == [app["id"]]
    assert listed[0]["events"] == {"pending": 0, "delivered": 0, "failed": 0}
    assert kontor(account, "DELETE", f"/kontor/v1/webhooks/apps/{app_id}").status_code == 204
    assert kontor(account, "GET", f"/kontor/v1/webhooks/apps/{app_id}").status_code == 404
    expect_status(404, lambda: wh.subscriptions_api.get_all(app_id))


def test_targets_on_this_machine_need_the_operators_leave(account, receivers):
    """The suite's server allows them (`KONTOR_WEBHOOKS_ALLOW_PRIVATE_TARGETS=1`); a server
    without that leave refuses them, in the app API and in HubSpot's settings API alike."""
    rx = receivers()
    assert create_app(account, rx.url)["targetUrl"] == rx.url
    r = kontor(account, "POST", "/kontor/v1/webhooks/apps", {"name": "x", "targetUrl": "not a url"})
    assert r.status_code == 400 and r.json()["category"] == "VALIDATION_ERROR"
    r = kontor(account, "POST", "/kontor/v1/webhooks/apps", {"name": " ", "targetUrl": rx.url})
    assert r.status_code == 400

    with running(env={"KONTOR_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "0"}) as srv:
        strict = create_account(srv)
        for url in (rx.url, "http://localhost:8080/hook", "http://10.0.0.1/hook", "http://[::1]/hook"):
            r = kontor(strict, "POST", "/kontor/v1/webhooks/apps", {"name": "x", "targetUrl": url})
            assert r.status_code == 400, (url, r.text)
            assert r.json()["errors"][0]["in"] == "targetUrl", r.text
        app = create_app(strict)
        with pytest.raises(ApiException) as e:
            hooks(strict).settings_api.configure(
                int(app["id"]),
                SettingsChangeRequest(
                    target_url=rx.url, throttling=ThrottlingSettings(max_concurrent_requests=1)
                ),
            )
        assert e.value.status == 400
        assert error_body(e.value)["category"] == "VALIDATION_ERROR"
        assert create_app(strict, "https://hooks.example.com/in")["targetUrl"] == "https://hooks.example.com/in"
