"""getUpdated and getDeleted: minute windows, retention limits, earliestDateAvailable."""

from datetime import datetime, timedelta, timezone

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sf_support import http_session, load

UTC = timezone.utc


def at(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def freeze(fake, when):
    fake.control("POST", "/_fake/clock", {"now": when})


def test_updated_windows_ignore_seconds_and_stop_at_the_last_whole_minute(fake, sf):
    freeze(fake, "2026-03-10T12:00:30Z")
    a = sf.Contact.create({"LastName": "A"})["id"]
    fake.control("POST", "/_fake/clock", {"advance": 120})
    b = sf.Contact.create({"LastName": "B"})["id"]
    fake.control("POST", "/_fake/clock", {"advance": 120})    # now 12:04:30

    first = sf.Contact.updated(at("2026-03-10T12:00:45Z"), at("2026-03-10T12:02:59Z"))
    assert first == {"ids": [a], "latestDateCovered": "2026-03-10T12:02:00.000+0000"}
    # An end in the future is cut back to the last whole minute.
    second = sf.Contact.updated(at("2026-03-10T12:02:00Z"), at("2026-03-10T13:00:00Z"))
    assert second == {"ids": [b], "latestDateCovered": "2026-03-10T12:04:00.000+0000"}

    sf.Contact.update(a, {"Title": "changed at 12:04:30"})
    window = (at("2026-03-10T12:04:00Z"), at("2026-03-10T13:00:00Z"))
    assert sf.Contact.updated(*window)["ids"] == []
    fake.control("POST", "/_fake/clock", {"advance": 60})
    assert sf.Contact.updated(*window) == {"ids": [a], "latestDateCovered": "2026-03-10T12:05:00.000+0000"}


def test_updated_window_with_offsets_covers_the_same_instants(fake, sf):
    freeze(fake, "2026-03-10T12:00:30Z")
    a = sf.Contact.create({"LastName": "A"})["id"]
    fake.control("POST", "/_fake/clock", {"advance": 600})
    plus_two = timezone(timedelta(hours=2))
    got = sf.Contact.updated(datetime(2026, 3, 10, 14, 0, tzinfo=plus_two),
                             datetime(2026, 3, 10, 14, 5, tzinfo=plus_two))
    assert got == {"ids": [a], "latestDateCovered": "2026-03-10T12:05:00.000+0000"}


def test_replication_date_errors(fake, sf):
    freeze(fake, "2026-03-10T12:00:00Z")
    now = at("2026-03-10T12:00:00Z")
    cases = [
        (sf.Contact.updated, now - timedelta(seconds=50), now - timedelta(seconds=20)),   # same minute
        (sf.Contact.updated, now, now - timedelta(minutes=5)),                            # start after end
        (sf.Contact.updated, now - timedelta(days=31), now),                              # beyond 30 days
        (sf.Contact.deleted, now - timedelta(days=16), now),                              # beyond 15 days
    ]
    for call, start, end in cases:
        with pytest.raises(SalesforceMalformedRequest) as err:
            call(start, end)
        assert err.value.content[0]["errorCode"] == "INVALID_REPLICATION_DATE", (call, start, end)
    assert sf.Contact.updated(now - timedelta(days=29), now)["ids"] == []
    assert sf.Contact.deleted(now - timedelta(days=14), now)["deletedRecords"] == []


def test_deleted_feed_lists_deletes_and_merges(fake, sf):
    freeze(fake, "2026-04-01T08:00:00Z")
    master, loser, gone = (sf.Account.create({"Name": n})["id"] for n in ("Master", "Loser", "Gone"))
    fake.control("POST", "/_fake/clock", {"advance": 65})
    sf.Account.delete(gone)
    fake.control("POST", "/_fake/clock", {"advance": 60})
    fake.control("POST", "/_fake/merge", {"object": "Account", "master": master, "losers": [loser]})
    fake.control("POST", "/_fake/clock", {"advance": 120})

    feed = sf.Account.deleted(at("2026-04-01T07:00:00Z"), at("2026-04-02T00:00:00Z"))
    assert feed["deletedRecords"] == [{"id": gone, "deletedDate": "2026-04-01T08:01:05.000+0000"},
                                      {"id": loser, "deletedDate": "2026-04-01T08:02:05.000+0000"}]
    assert feed["latestDateCovered"] == "2026-04-01T08:04:00.000+0000"
    assert feed["earliestDateAvailable"] <= "2026-04-01T07:00:00.000+0000"
    # Deleted rows never show in the updated feed.
    updated = sf.Account.updated(at("2026-04-01T07:00:00Z"), at("2026-04-02T00:00:00Z"))
    assert updated["ids"] == [master]


def test_purged_delete_log_moves_earliest_date_available(fake, sf):
    freeze(fake, "2026-04-01T08:00:00Z")
    early = sf.Contact.create({"LastName": "Early"})["id"]
    sf.Contact.delete(early)
    fake.control("POST", "/_fake/clock", {"advance": 3600})
    late = sf.Contact.create({"LastName": "Late"})["id"]
    sf.Contact.delete(late)
    fake.control("POST", "/_fake/clock", {"advance": 60})
    fake.control("POST", "/_fake/purge-deleted-log", {"before": "2026-04-01T08:30:45Z"})
    feed = sf.Contact.deleted(at("2026-04-01T07:00:00Z"), at("2026-04-01T10:00:00Z"))
    assert feed["earliestDateAvailable"] == "2026-04-01T08:30:00.000+0000"
    assert [d["id"] for d in feed["deletedRecords"]] == [late]
    # A start before earliestDateAvailable is answered, and tells the caller it missed deletes.
    assert feed["earliestDateAvailable"] > "2026-04-01T07:00:00.000+0000"
    rows = sf.query_all("SELECT Id FROM Contact", include_deleted=True)["records"]
    assert [r["Id"] for r in rows] == [late]


def test_recycle_bin_keeps_deleted_rows_fifteen_days(fake, sf):
    freeze(fake, "2026-04-01T08:00:00Z")
    rid = sf.Contact.create({"LastName": "Binned"})["id"]
    sf.Contact.delete(rid)
    fake.control("POST", "/_fake/clock", {"advance": 14 * 86400})
    assert sf.query("SELECT COUNT() FROM Contact", include_deleted=True)["totalSize"] == 1
    fake.control("POST", "/_fake/clock", {"advance": 2 * 86400})
    assert sf.query("SELECT COUNT() FROM Contact", include_deleted=True)["totalSize"] == 0


def test_more_ids_than_the_limit_is_refused(fake, sf):
    freeze(fake, "2026-04-01T08:00:00Z")
    fake.control("POST", "/_fake/config", {"id_limit": 3})
    load(fake, "Lead", [{"LastName": f"L{i}", "Company": "C"} for i in range(4)])
    fake.control("POST", "/_fake/clock", {"advance": 120})
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Lead.updated(at("2026-04-01T07:00:00Z"), at("2026-04-01T09:00:00Z"))
    assert err.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert len(sf.Lead.updated(at("2026-04-01T07:00:00Z"), at("2026-04-01T07:59:00Z"))["ids"]) == 0


def test_both_trailing_slash_forms_and_bad_parameters(fake, token):
    freeze(fake, "2026-04-01T08:00:00Z")
    s = http_session(fake)
    auth = {"Authorization": "Bearer " + token["access_token"]}
    base = fake.https + "/services/data/v59.0/sobjects/Contact"
    params = {"start": "2026-04-01T07:00:00+00:00", "end": "2026-04-01T08:00:00+00:00"}
    for path in ("/updated", "/updated/", "/deleted", "/deleted/"):
        assert s.get(base + path, params=params, headers=auth).status_code == 200, path
    missing = s.get(base + "/updated/", params={"start": params["start"]}, headers=auth)
    assert missing.status_code == 400 and missing.json()[0]["errorCode"] == "MISSING_ARGUMENT"
    garbled = s.get(base + "/updated/", params={"start": "yesterday", "end": params["end"]}, headers=auth)
    assert garbled.status_code == 400


def test_bulk_loaded_rows_keep_given_audit_dates(fake, sf):
    freeze(fake, "2026-04-10T08:00:00Z")
    ids = load(fake, "Contact", [{"LastName": "Old", "CreatedDate": "2026-04-01T10:00:00Z"},
                                 {"LastName": "Older", "CreatedDate": "2026-03-01T10:00:00Z",
                                  "SystemModstamp": "2026-04-05T09:30:00Z"}])
    rows = {r["Id"]: r for r in sf.query("SELECT Id, CreatedDate, SystemModstamp FROM Contact")["records"]}
    assert rows[ids[0]]["SystemModstamp"] == "2026-04-01T10:00:00.000+0000"
    assert rows[ids[1]]["CreatedDate"] == "2026-03-01T10:00:00.000+0000"
    got = sf.Contact.updated(datetime(2026, 4, 5, tzinfo=UTC), datetime(2026, 4, 6, tzinfo=UTC))
    assert got["ids"] == [ids[1]]
