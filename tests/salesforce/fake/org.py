"""The in-memory org: seeded records, queries with cursors, replication feeds, merges,
lead conversion, users and bulk loading for the control API.
"""

from collections import OrderedDict
from datetime import date, timedelta

import ids
import soql
from clock import DAY_MS, date_from_ms, format_ms, parse_datetime
from schema import LEAD_CONVERTED_STATUS, build_schema
from store import Ctx, RecordError, Store, api_error

MINUTE_MS = 60_000
CURSOR_IDLE_MS = 15 * MINUTE_MS
CURSORS_PER_USER = 10
UPDATED_WINDOW_DAYS = 30
DELETED_WINDOW_DAYS = 15
AUDIT_FIELDS = ("CreatedDate", "LastModifiedDate", "SystemModstamp")

DEFAULT_CONFIG = {
    "client_id": "kontor-test-client",
    "client_secret": "kontor-test-secret",
    "redirect_uris": ["http://127.0.0.1/callback", "http://localhost/callback"],
    "access_token_ttl": 7200,
    "rotate_refresh_tokens": False,
    "password_grant_refresh_token": True,
    "daily_limit": 15000,
    "org_name": "Kontor Test Org",
    "id_limit": 600000,
}


def floor_minute(ms):
    return ms // MINUTE_MS * MINUTE_MS


class Org(Store):
    def __init__(self, clock):
        super().__init__(build_schema(), clock)
        self.config = dict(DEFAULT_CONFIG)
        self.cursors = OrderedDict()
        self.cursor_counter = 0
        self.purge_marks = {}
        self.passwords = {}
        self.org_id = self.new_id("Organization")
        self.admin_id = self.new_id("User")
        ctx = Ctx(self.admin_id, internal=True)
        self.create(self.schema["Organization"], {
            "Name": self.config["org_name"], "OrganizationType": "Enterprise Edition",
            "InstanceName": "FK1", "IsSandbox": False}, ctx, rid=self.org_id)
        self.create(self.schema["User"], {
            "Username": "admin@example.com", "FirstName": "Ada", "LastName": "Admin",
            "Email": "admin@example.com", "IsActive": True, "UserType": "Standard"}, ctx, rid=self.admin_id)
        self.passwords[self.admin_id] = "password"

    # ---- users ---------------------------------------------------------------------------
    def create_user(self, spec):
        first, last = spec.get("firstName") or spec.get("FirstName"), spec.get("lastName") or spec.get("LastName")
        if not last and spec.get("name"):
            parts = str(spec["name"]).rsplit(" ", 1)
            first, last = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])
        username = spec.get("username") or spec.get("Username")
        email = spec.get("email") or spec.get("Email") or username
        if not username or not last:
            raise ValueError("a user needs username and lastName (or name)")
        active = spec.get("IsActive", spec.get("isActive", True))
        rec = self.create(self.schema["User"], {
            "Username": username, "FirstName": first, "LastName": last, "Email": email,
            "IsActive": bool(active), "UserType": "Standard"}, Ctx(self.admin_id, internal=True))
        self.passwords[rec["Id"]] = spec.get("password", "password")
        return rec

    def user_by_username(self, username):
        found = self.ext_lookup("User", self.schema["User"].fields["Username"], username)
        return self.records["User"][found[0]] if found else None

    def create_queue(self, spec):
        name = spec.get("name")
        if not name:
            raise ValueError("a queue needs a name")
        dev = "".join(c if c.isalnum() else "_" for c in name)
        return self.create(self.schema["Group"], {
            "Name": name, "DeveloperName": dev, "Type": "Queue", "Email": spec.get("email")},
            Ctx(self.admin_id, internal=True))

    def rename_org(self, name):
        self.touch("Organization", self.org_id, self.admin_id, {"Name": name})

    # ---- queries -------------------------------------------------------------------------
    def project(self, t, rec, fields, version):
        out = {"attributes": {"type": t.name, "url": f"/services/data/v{version}/sobjects/{t.name}/{rec['Id']}"}}
        for f in fields:
            out[f.name] = rec.get(f.name)
        return out

    def _purged(self, type_name, rid):
        return rid not in self.records[type_name]

    def auto_purge(self):
        """The recycle bin keeps deleted rows for 15 days; older ones are gone for good."""
        cutoff = format_ms(self.clock.now_ms() - DELETED_WINDOW_DAYS * DAY_MS)
        while self.delete_log and self.delete_log[0][0] < cutoff:
            stamp, type_name, rid = self.delete_log.popleft()
            self._physically_delete(type_name, rid, stamp)

    def _physically_delete(self, type_name, rid, stamp):
        rec = self.records[type_name].get(rid)
        if rec is not None and rec.get("IsDeleted") and self.deleted_at[type_name].get(rid) == stamp:
            self.put(type_name, rid, None, rec)
            del self.deleted_at[type_name][rid]

    def purge_deleted(self, before_ms, type_name=None):
        """Empty the delete log up to a moment: getDeleted then reports it as earliestDateAvailable."""
        mark = floor_minute(before_ms)
        names = [type_name] if type_name else list(self.schema)
        cutoff = format_ms(before_ms)
        for name in names:
            self.purge_marks[name] = max(self.purge_marks.get(name, 0), mark)
            for rid, stamp in list(self.deleted_at[name].items()):
                if stamp < cutoff:
                    self._physically_delete(name, rid, stamp)

    def query(self, text, include_deleted, version, batch_size, user_id, endpoint):
        self.auto_purge()
        try:
            c = soql.compile_query(text, self.schema)
        except soql.SoqlError as e:
            raise api_error(400, e.code, soql.format_error(text, e))
        recs = self.records[c.sobject.name]
        if c.id_candidates is not None:
            rows = sorted((recs[i] for i in c.id_candidates if i in recs), key=lambda r: r["Id"])
        else:
            rows = recs.values()
        pred = c.predicate
        rows = [r for r in rows if (include_deleted or not r.get("IsDeleted")) and (pred is None or pred(r))]
        if c.order:
            soql.sort_rows(rows, c.order)
        if c.offset:
            rows = rows[c.offset:]
        if c.limit is not None:
            rows = rows[:c.limit]
        if c.count:
            return {"totalSize": len(rows), "done": True, "records": []}
        cursor = {"type": c.sobject, "fields": c.fields, "rows": rows, "batch": batch_size or 2000,
                  "user": user_id, "endpoint": endpoint, "used": self.clock.now_ms()}
        return self._page(cursor, 0, version, batch_size)

    def _page(self, cursor, pos, version, batch_size):
        rows = cursor["rows"]
        batch = batch_size or cursor["batch"]
        t, fields = cursor["type"], cursor["fields"]
        end = min(pos + batch, len(rows))
        out = {"totalSize": len(rows), "done": end >= len(rows)}
        if end < len(rows):
            locator = cursor.get("locator")
            if locator is None:
                locator = self._open_cursor(cursor)
            out["nextRecordsUrl"] = f"/services/data/v{version}/{cursor['endpoint']}/{locator}-{end}"
        elif cursor.get("locator"):
            self.cursors.pop(cursor["locator"], None)
        out["records"] = [self.project(t, r, fields, version) for r in rows[pos:end]]
        cursor["used"] = self.clock.now_ms()
        return out

    def _open_cursor(self, cursor):
        self.cursor_counter += 1
        locator = ids.make_id("01g", self.cursor_counter)
        cursor["locator"] = locator
        self.cursors[locator] = cursor
        # A user keeps at most ten open cursors; opening another drops the oldest.
        mine = [k for k, c in self.cursors.items() if c["user"] == cursor["user"]]
        for k in mine[:-CURSORS_PER_USER]:
            del self.cursors[k]
        return locator

    def query_more(self, token, version, batch_size, user_id):
        locator, _, pos = token.partition("-")
        cursor = self.cursors.get(locator)
        now = self.clock.now_ms()
        if cursor is not None and now - cursor["used"] > CURSOR_IDLE_MS:
            del self.cursors[locator]
            cursor = None
        if cursor is None or cursor["user"] != user_id or not pos.isdigit() or int(pos) >= len(cursor["rows"]):
            raise api_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(cursor, int(pos), version, batch_size)

    # ---- replication -----------------------------------------------------------------------
    def _window(self, start_ms, end_ms, days):
        now = self.clock.now_ms()
        start, end = floor_minute(start_ms), floor_minute(end_ms)
        if start >= end:
            raise api_error(400, "INVALID_REPLICATION_DATE",
                            "start date must chronologically precede the end date by more than one minute")
        earliest = floor_minute(now - days * DAY_MS)
        if start < earliest:
            raise api_error(400, "INVALID_REPLICATION_DATE",
                            f"start date cannot be more than {days} days ago ({format_ms(earliest)})")
        return start, min(end, floor_minute(now))

    def get_updated(self, t, start_ms, end_ms):
        start, latest = self._window(start_ms, end_ms, UPDATED_WINDOW_DAYS)
        lo, hi = format_ms(start), format_ms(latest)
        found = [r["Id"] for r in self.records[t.name].values()
                 if not r.get("IsDeleted") and lo <= r["SystemModstamp"] < hi]
        self._check_id_limit(found)
        return {"ids": found, "latestDateCovered": format_ms(latest)}

    def get_deleted(self, t, start_ms, end_ms):
        self.auto_purge()
        start, latest = self._window(start_ms, end_ms, DELETED_WINDOW_DAYS)
        lo, hi = format_ms(start), format_ms(latest)
        found = sorted((stamp, rid) for rid, stamp in self.deleted_at[t.name].items() if lo <= stamp < hi)
        self._check_id_limit(found)
        earliest = max(self.purge_marks.get(t.name, 0),
                       floor_minute(self.clock.now_ms() - DELETED_WINDOW_DAYS * DAY_MS))
        return {"deletedRecords": [{"id": rid, "deletedDate": stamp} for stamp, rid in found],
                "earliestDateAvailable": format_ms(earliest), "latestDateCovered": format_ms(latest)}

    def _check_id_limit(self, found):
        limit = self.config["id_limit"]
        if len(found) > limit:
            raise api_error(400, "EXCEEDED_ID_LIMIT",
                            f"record limit reached. cannot submit more than {limit} records into this call")

    # ---- merge and lead conversion ------------------------------------------------------------
    def merge(self, type_name, master_id, loser_ids, user_id):
        t = self.schema.get(type_name)
        if t is None or not t.mergeable:
            raise ValueError("merge works on Lead, Contact and Account")
        master_id = ids.normalize(master_id)
        losers = [ids.normalize(x) for x in loser_ids or []]
        if not 1 <= len(losers) <= 2:
            raise ValueError("a merge takes one or two losers besides the master")
        for rid in [master_id, *losers]:
            if rid is None or self.live(type_name, rid) is None:
                raise ValueError(f"not a live {type_name}: {rid}")
        if master_id in losers or len(set(losers)) != len(losers):
            raise ValueError("master and losers must be distinct records")
        stamp = self.clock.stamp()
        reparented = []
        for loser in losers:
            for ctype, fname, cid in self.child_ids(loser):
                self.touch(ctype, cid, user_id, {fname: master_id})
                reparented.append(cid)
            self.mark_deleted(type_name, loser, user_id, stamp, {"MasterRecordId": master_id})
        self.touch(type_name, master_id, user_id, {})
        return {"masterRecordId": master_id, "mergedRecordIds": losers, "updatedRelatedIds": reparented}

    def convert_lead(self, spec, user_id):
        lead_id = ids.normalize(spec.get("leadId"))
        lead = self.live("Lead", lead_id) if lead_id else None
        if lead is None:
            raise ValueError("leadId must name a live Lead")
        if lead.get("IsConverted"):
            raise ValueError("this lead was already converted")
        ctx = Ctx(user_id, internal=True)
        owner = lead["OwnerId"] if lead["OwnerId"].startswith("005") else user_id
        address = {k: lead.get(k) for k in ("Street", "City", "State", "PostalCode", "Country")}
        try:
            if spec.get("accountId"):
                account_id = ids.normalize(spec["accountId"])
                if not account_id or self.live("Account", account_id) is None:
                    raise ValueError("accountId must name a live Account")
            else:
                values = {"Name": lead.get("Company"), "Website": lead.get("Website"), "Phone": lead.get("Phone"),
                          "Industry": lead.get("Industry"), "OwnerId": owner,
                          **{"Billing" + k: v for k, v in address.items()}}
                account_id = self.create(self.schema["Account"], _present(values), ctx)["Id"]
            from_lead = {"FirstName": lead.get("FirstName"), "LastName": lead.get("LastName"),
                         "Email": lead.get("Email"), "Phone": lead.get("Phone"),
                         "MobilePhone": lead.get("MobilePhone"), "Title": lead.get("Title"),
                         "LeadSource": lead.get("LeadSource"),
                         **{"Mailing" + k: v for k, v in address.items()}}
            if spec.get("contactId"):
                contact_id = ids.normalize(spec["contactId"])
                contact = self.live("Contact", contact_id) if contact_id else None
                if contact is None:
                    raise ValueError("contactId must name a live Contact")
                # An existing contact keeps its values; the lead only fills the blanks.
                fill = {k: v for k, v in from_lead.items() if v is not None and contact.get(k) is None}
                if contact.get("AccountId") is None:
                    fill["AccountId"] = account_id
                self.update(self.schema["Contact"], contact_id, fill, ctx)
            else:
                values = {**from_lead, "AccountId": account_id, "OwnerId": owner}
                contact_id = self.create(self.schema["Contact"], _present(values), ctx)["Id"]
            opportunity_id = None
            if spec.get("createOpportunity", True):
                name = spec.get("opportunityName") or f"{lead.get('Company')}-"
                opportunity_id = self.create(self.schema["Opportunity"], {
                    "Name": name, "StageName": "Prospecting", "CloseDate": self._quarter_end(),
                    "AccountId": account_id, "OwnerId": owner, "LeadSource": lead.get("LeadSource")}, ctx)["Id"]
        except RecordError as e:
            raise ValueError(f"{e.status_code}: {e.message}")
        for ctype, fname, cid in self.child_ids(lead_id):
            self.touch(ctype, cid, user_id, {fname: contact_id})
        self.touch("Lead", lead_id, user_id, {
            "IsConverted": True, "Status": spec.get("convertedStatus", LEAD_CONVERTED_STATUS),
            "ConvertedAccountId": account_id, "ConvertedContactId": contact_id,
            "ConvertedOpportunityId": opportunity_id, "ConvertedDate": date_from_ms(self.clock.now_ms())})
        return {"leadId": lead_id, "accountId": account_id, "contactId": contact_id,
                "opportunityId": opportunity_id}

    def _quarter_end(self):
        today = date.fromisoformat(date_from_ms(self.clock.now_ms()))
        q_last_month = (today.month - 1) // 3 * 3 + 3
        first_next = date(today.year + (q_last_month == 12), q_last_month % 12 + 1, 1)
        return (first_next - timedelta(days=1)).isoformat()

    # ---- bulk loading (control API) -------------------------------------------------------------
    def bulk_insert(self, type_name, rows, user_id):
        t = self.schema[type_name]
        ctx = Ctx(user_id, internal=True)
        created = []
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise ValueError(f"row {i}: not an object")
            row = dict(row)
            overrides = {}
            for name in AUDIT_FIELDS:
                if name in row:
                    ms = parse_datetime(row.pop(name), require_zone=False)
                    if ms is None:
                        raise ValueError(f"row {i}: {name} is not a datetime")
                    overrides[name] = format_ms(ms)
            if "CreatedDate" in overrides:
                overrides.setdefault("LastModifiedDate", overrides["CreatedDate"])
            if "LastModifiedDate" in overrides:
                overrides.setdefault("SystemModstamp", overrides["LastModifiedDate"])
            if row.pop("IsDeleted", False) and t.has_is_deleted:
                overrides["IsDeleted"] = True
            try:
                values = self.coerce(t, row)
                rec = self.create(t, values, ctx, overrides)
            except RecordError as e:
                raise ValueError(f"row {i}: {e.status_code}: {e.message}")
            except Exception as e:
                body = getattr(e, "body", None)
                raise ValueError(f"row {i}: {body or e}")
            created.append(rec["Id"])
        return created


def _present(values):
    return {k: v for k, v in values.items() if v is not None}
