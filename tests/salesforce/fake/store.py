"""Records, their indexes, and writes validated as Salesforce validates them.

Two kinds of failure, kept apart as Salesforce keeps them:
* ApiError: the request itself is wrong (unknown field, a value that does not deserialize).
  The whole call fails with a top-level body [{message, errorCode, fields?}].
* RecordError: one record fails DML validation. Single-record calls turn it into a
  top-level 400; collections report it per record as {statusCode, message, fields}.

Stored records are never mutated: a write replaces the dict, so a query snapshot holding
the old dicts keeps seeing the data as it was when the query ran.
"""

import json
import re
from collections import deque

import ids
from clock import format_ms, parse_date, parse_datetime
from schema import NUMBER_TYPES, STAGE_INFO, TASK_CLOSED_STATUSES

DERIVED_NAME_TYPES = {"Contact", "Lead", "User"}
# Close to the address grammar Salesforce accepts: local part, '@', dotted domain with a TLD.
_EMAIL_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}$")
_SF_TYPE_NAMES = {"id": "id", "reference": "id", "boolean": "boolean", "int": "int", "double": "double",
                  "currency": "double", "percent": "double", "date": "date", "datetime": "datetime"}


class ApiError(Exception):
    def __init__(self, status: int, body, headers=None):
        super().__init__(str(body))
        self.status = status
        self.body = body
        self.headers = headers or {}


def api_error(status, code, message, fields=None):
    item = {"message": message, "errorCode": code}
    if fields is not None:
        item["fields"] = fields
    return ApiError(status, [item])


class RecordError(Exception):
    def __init__(self, status_code, message, fields=None):
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.fields = list(fields or [])

    def as_item(self):
        return {"statusCode": self.status_code, "message": self.message, "fields": self.fields}

    def as_api_error(self, status=400):
        return api_error(status, self.status_code, self.message, self.fields)


class Ctx:
    """Who is writing, and whether assignment rules may run (Sforce-Auto-Assign)."""

    def __init__(self, user_id, auto_assign=True, internal=False):
        self.user_id = user_id
        self.auto_assign = auto_assign
        self.internal = internal


def _json_token(raw):
    if isinstance(raw, bool):
        return ("VALUE_TRUE" if raw else "VALUE_FALSE"), json.dumps(raw)
    if isinstance(raw, int):
        return "VALUE_NUMBER_INT", str(raw)
    if isinstance(raw, float):
        return "VALUE_NUMBER_FLOAT", repr(raw)
    if isinstance(raw, dict):
        return "START_OBJECT", "{"
    if isinstance(raw, list):
        return "START_ARRAY", "["
    return "VALUE_STRING", str(raw)


class Store:
    def __init__(self, schema, clock):
        self.schema = schema
        self.clock = clock
        self.records = {name: {} for name in schema}
        self.deleted_at = {name: {} for name in schema}
        self.delete_log = deque()          # (deletedDate, type, id) in deletion order
        self.counter = 0
        self.ext_index = {}                # (type, field) -> {key: set(ids)} over live records
        self.children = {}                 # (child type, field) -> {parent id: set(child ids)}
        self.child_links = []              # (child type, field name) with cascade semantics
        for t in schema.values():
            for f in t.fields.values():
                if f.type == "reference" and f.cascade_delete:
                    self.child_links.append((t.name, f.name))
                    self.children[(t.name, f.name)] = {}
        self.assignment_rules = {}         # type -> owner id
        self.record_failures = []
        self.recent = {name: deque(maxlen=10) for name in schema}
        self.journal = None                # list of (type, id, old record) while a collection runs

    # ---- ids and lookups -------------------------------------------------------------
    def new_id(self, type_name):
        self.counter += 1
        return ids.make_id(self.schema[type_name].key_prefix, self.counter)

    def live(self, type_name, rid):
        rec = self.records[type_name].get(rid)
        if rec is None or rec.get("IsDeleted"):
            return None
        return rec

    def find_any(self, rid):
        type_name = ids.type_for_prefix(rid[:3])
        if type_name is None:
            return None, None
        return type_name, self.records[type_name].get(rid)

    # ---- indexes ---------------------------------------------------------------------
    def _ext_key(self, field, value):
        if value is None:
            return None
        text = str(value)
        return text if field.case_sensitive else text.lower()

    def ext_lookup(self, type_name, field, value):
        """Ids of live records whose field equals value (building the index on first use)."""
        key = (type_name, field.name)
        index = self.ext_index.get(key)
        if index is None:
            index = {}
            for rid, rec in self.records[type_name].items():
                if not rec.get("IsDeleted"):
                    k = self._ext_key(field, rec.get(field.name))
                    if k is not None:
                        index.setdefault(k, set()).add(rid)
            self.ext_index[key] = index
        k = self._ext_key(field, value)
        return sorted(index.get(k, ())) if k is not None else []

    def put(self, type_name, rid, new, old):
        """Replace a record and keep every index in step (new=None removes it)."""
        if self.journal is not None:
            self.journal.append((type_name, rid, old))
        if new is None:
            self.records[type_name].pop(rid, None)
        else:
            self.records[type_name][rid] = new
        old_live = old is not None and not old.get("IsDeleted")
        new_live = new is not None and not new.get("IsDeleted")
        t = self.schema[type_name]
        for (itype, fname), index in self.ext_index.items():
            if itype != type_name:
                continue
            f = t.fields[fname]
            ok = self._ext_key(f, old.get(fname)) if old_live else None
            nk = self._ext_key(f, new.get(fname)) if new_live else None
            if ok == nk:
                continue
            if ok is not None:
                bucket = index.get(ok)
                if bucket:
                    bucket.discard(rid)
                    if not bucket:
                        del index[ok]
            if nk is not None:
                index.setdefault(nk, set()).add(rid)
        for ctype, fname in self.child_links:
            if ctype != type_name:
                continue
            index = self.children[(ctype, fname)]
            op = old.get(fname) if old_live else None
            np = new.get(fname) if new_live else None
            if op == np:
                continue
            if op is not None and op in index:
                index[op].discard(rid)
                if not index[op]:
                    del index[op]
            if np is not None:
                index.setdefault(np, set()).add(rid)

    def undo(self, journal):
        """Put back every record a journal saw changed (allOrNone roll-back)."""
        self.journal = None
        for type_name, rid, old in reversed(journal):
            self.put(type_name, rid, old, self.records[type_name].get(rid))
            if old is None or not old.get("IsDeleted"):
                self.deleted_at[type_name].pop(rid, None)

    def child_ids(self, parent_id):
        out = []
        for (ctype, fname), index in self.children.items():
            for cid in sorted(index.get(parent_id, ())):
                out.append((ctype, fname, cid))
        return out

    # ---- request bodies to typed values ------------------------------------------------
    def coerce(self, t, body, raw_text=None):
        """Canonical field name -> value for a JSON body, or ApiError (whole request fails)."""
        if not isinstance(body, dict):
            raise api_error(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of "
                            f"{t.name} from {_json_token(body)[0]} value {_json_token(body)[1]}")
        values = {}
        for key, raw in body.items():
            if key == "attributes":
                continue
            f = t.field(key)
            if f is None:
                raise api_error(400, "INVALID_FIELD", f"No such column '{key}' on sobject of type {t.name}")
            values[f.name] = self.coerce_value(f, raw, key, raw_text)
        return values

    def coerce_value(self, f, raw, key, raw_text=None):
        if raw is None:
            return None
        ftype = f.type
        value = _UNSET = object()
        if ftype in ("id", "reference"):
            if isinstance(raw, str):
                value = raw
        elif f.is_text:
            if isinstance(raw, str):
                value = raw
            elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
                value = str(raw)
        elif ftype == "boolean":
            if isinstance(raw, bool):
                value = raw
            elif isinstance(raw, str) and raw.lower() in ("true", "false"):
                value = raw.lower() == "true"
        elif ftype in NUMBER_TYPES:
            num = raw
            if isinstance(raw, str):
                try:
                    num = float(raw) if re.fullmatch(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*", raw) else None
                except ValueError:
                    num = None
            if isinstance(num, (int, float)) and not isinstance(num, bool):
                if ftype == "int":
                    if float(num).is_integer():
                        value = int(num)
                else:
                    value = float(num)
        elif ftype == "date":
            if isinstance(raw, str) and parse_date(raw):
                value = raw
        elif ftype == "datetime":
            if isinstance(raw, str):
                ms = parse_datetime(raw, require_zone=False)
                if ms is not None:
                    value = format_ms(ms)
        if value is _UNSET:
            token, shown = _json_token(raw)
            where = ""
            if raw_text:
                at = raw_text.find(f'"{key}"')
                if at >= 0:
                    where = f" at [line:1, column:{at + len(key) + 4}]"
            raise api_error(400, "JSON_PARSER_ERROR",
                            f"Cannot deserialize instance of {_SF_TYPE_NAMES.get(ftype, 'string')} from {token} "
                            f"value {shown} or request may be missing a required field{where}")
        return value

    # ---- DML ---------------------------------------------------------------------------
    def blank(self, t):
        rec = {}
        for f in t.fields.values():
            if f.type == "boolean":
                rec[f.name] = bool(f.default)
            elif f.default is not None:
                rec[f.name] = f.default
            else:
                rec[f.name] = None
        return rec

    def create(self, t, values, ctx, overrides=None, rid=None):
        if not t.createable and not ctx.internal:
            raise RecordError("INVALID_TYPE_FOR_OPERATION", f"entity type cannot be inserted: {t.name}")
        if "Id" in values:
            raise RecordError("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
        bad = [n for n in values if not t.fields[n].createable]
        if bad and not ctx.internal:
            raise _not_writable(bad)
        rec = self.blank(t)
        for name, value in values.items():
            rec[name] = _stored(t.fields[name], value)
        now = self.clock.stamp()
        if t.has_owner and rec.get("OwnerId") is None:
            rec["OwnerId"] = ctx.user_id
        for name in ("CreatedDate", "LastModifiedDate", "SystemModstamp"):
            rec[name] = now
        rec["CreatedById"] = rec["LastModifiedById"] = ctx.user_id
        if overrides:
            rec.update(overrides)
        if t.has_is_deleted:
            rec["IsDeleted"] = bool(rec.get("IsDeleted"))
        self._assign(t, rec, ctx)
        self._derive(t, rec, values)
        changed = set(values) | ({"OwnerId"} if t.has_owner else set())
        self.validate(t, rec, changed, ctx, None, "insert")
        rid = rid or self.new_id(t.name)
        rec = {"Id": rid, **{k: v for k, v in rec.items() if k != "Id"}}
        self.put(t.name, rid, rec, None)
        if rec.get("IsDeleted"):
            self._log_delete(t.name, rid, rec["SystemModstamp"])
        else:
            self.recent[t.name].append(rid)
        return rec

    def update(self, t, rid, values, ctx):
        old = self.records[t.name][rid]
        if not t.updateable and not ctx.internal:
            raise RecordError("INVALID_TYPE_FOR_OPERATION", f"entity type cannot be updated: {t.name}")
        if "Id" in values:
            if ids.normalize(values["Id"]) != rid:
                raise _not_writable(["Id"])
            values = {k: v for k, v in values.items() if k != "Id"}
        if t.name == "Lead" and old.get("IsConverted") and not ctx.internal:
            raise RecordError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
        bad = [n for n in values if not t.fields[n].updateable]
        if bad and not ctx.internal:
            raise _not_writable(bad)
        rec = dict(old)
        for name, value in values.items():
            rec[name] = _stored(t.fields[name], value)
        now = self.clock.stamp()
        rec["LastModifiedDate"] = rec["SystemModstamp"] = now
        rec["LastModifiedById"] = ctx.user_id
        changed = set(values)
        if self._assign(t, rec, ctx):
            changed.add("OwnerId")
        self._derive(t, rec, values)
        self.validate(t, rec, changed, ctx, rid, "update")
        self.put(t.name, rid, rec, old)
        self.recent[t.name].append(rid)
        return rec

    def delete(self, t, rid, ctx, stamp=None):
        old = self.records[t.name][rid]
        if not t.deletable and not ctx.internal:
            raise RecordError("INVALID_TYPE_FOR_OPERATION", f"entity type cannot be deleted: {t.name}")
        if old.get("IsDeleted"):
            raise RecordError("ENTITY_IS_DELETED", "entity is deleted")
        if not ctx.internal:
            self._check_failure_rules(t, old, "delete")
        stamp = stamp or self.clock.stamp()
        # Deleting a parent deletes its contacts, opportunities and activities with it.
        for ctype, fname, cid in self.child_ids(rid):
            child = self.records[ctype].get(cid)
            if child is not None and not child.get("IsDeleted"):
                self.delete(self.schema[ctype], cid, Ctx(ctx.user_id, internal=True), stamp)
        self.mark_deleted(t.name, rid, ctx.user_id, stamp)

    def mark_deleted(self, type_name, rid, user_id, stamp, extra=None):
        old = self.records[type_name][rid]
        rec = dict(old)
        rec["IsDeleted"] = True
        rec["SystemModstamp"] = rec["LastModifiedDate"] = stamp
        rec["LastModifiedById"] = user_id
        if extra:
            rec.update(extra)
        self.put(type_name, rid, rec, old)
        self._log_delete(type_name, rid, stamp)

    def _log_delete(self, type_name, rid, stamp):
        self.deleted_at[type_name][rid] = stamp
        self.delete_log.append((stamp, type_name, rid))

    def touch(self, type_name, rid, user_id, changes):
        """A system-made change (re-parenting on merge or conversion): no validation."""
        old = self.records[type_name][rid]
        rec = dict(old)
        rec.update(changes)
        rec["SystemModstamp"] = rec["LastModifiedDate"] = self.clock.stamp()
        rec["LastModifiedById"] = user_id
        self.put(type_name, rid, rec, old)
        return rec

    def _assign(self, t, rec, ctx):
        owner = self.assignment_rules.get(t.name)
        if owner and ctx.auto_assign and not ctx.internal:
            rec["OwnerId"] = owner
            return True
        return False

    def _derive(self, t, rec, values):
        if t.name in DERIVED_NAME_TYPES:
            rec["Name"] = " ".join(p for p in (rec.get("FirstName"), rec.get("LastName")) if p) or None
        if t.name == "Opportunity":
            info = STAGE_INFO.get(rec.get("StageName"))
            if info:
                rec["IsClosed"], rec["IsWon"] = info[2], info[3]
                if "StageName" in values and "Probability" not in values:
                    rec["Probability"] = float(info[1])
        if t.name == "Task":
            rec["IsClosed"] = rec.get("Status") in TASK_CLOSED_STATUSES

    # ---- validation --------------------------------------------------------------------
    def validate(self, t, rec, changed, ctx, rid, operation):
        missing = [f.name for f in t.fields.values()
                   if not f.nillable and f.type != "boolean" and (f.createable or f.updateable)
                   and rec.get(f.name) is None]
        if missing:
            raise RecordError("REQUIRED_FIELD_MISSING",
                              f"Required fields are missing: [{', '.join(missing)}]", missing)
        for name in t.fields:
            if name not in changed or rec.get(name) is None:
                continue
            f = t.fields[name]
            rec[name] = self._check_value(t, f, rec[name], ctx)
        for name in changed:
            f = t.fields[name]
            if f.unique and rec.get(name) is not None:
                others = [o for o in self.ext_lookup(t.name, f, rec[name]) if o != rid]
                if others:
                    raise RecordError("DUPLICATE_VALUE", f"duplicate value found: {f.name} duplicates "
                                      f"value on record with id: {others[0]}")
        if not ctx.internal:
            self._check_failure_rules(t, rec, operation)

    def _check_value(self, t, f, value, ctx):
        if f.is_text:
            if len(value) > f.length:
                raise RecordError("STRING_TOO_LONG", f"{f.label}: data value too large: {value} "
                                  f"(max length={f.length})", [f.name])
            if f.type == "email" and not _EMAIL_RE.match(value):
                raise RecordError("INVALID_EMAIL_ADDRESS", f"{f.label}: invalid email address: {value}", [f.name])
            if f.restricted:
                parts = value.split(";") if f.type == "multipicklist" else [value]
                for part in parts:
                    if part not in f.picklist:
                        raise RecordError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                          f"{f.label}: bad value for restricted picklist field: {part}", [f.name])
            return value
        if f.type in NUMBER_TYPES:
            if f.type == "int":
                limit = 10 ** (f.digits or 9)
            else:
                value = float(round(value, f.scale))
                limit = 10 ** max(f.precision - f.scale, 1)
            if abs(value) >= limit:
                raise RecordError("NUMBER_OUTSIDE_VALID_RANGE",
                                  f"{f.label}: value outside of valid range on numeric field: {value}", [f.name])
            return value
        if f.type == "reference":
            norm = ids.normalize(value)
            if norm is None:
                raise RecordError("MALFORMED_ID", f"{f.label}: id value of incorrect type: {value}", [f.name])
            target_type = ids.type_for_prefix(norm[:3])
            if target_type not in f.reference_to:
                raise RecordError("FIELD_INTEGRITY_EXCEPTION",
                                  f"{f.label}: id value of incorrect type: {value}", [f.name])
            target = self.records[target_type].get(norm)
            if target is None or target.get("IsDeleted"):
                raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f.name])
            if f.name == "OwnerId" and target_type == "User" and not target.get("IsActive"):
                raise RecordError("INACTIVE_OWNER_OR_USER", f"operation performed with inactive user "
                                  f"[{norm}] as owner of {t.name.lower()}")
            return norm
        return value

    def _check_failure_rules(self, t, rec, operation):
        for rule in self.record_failures:
            if rule["object"] != t.name or operation not in rule["operations"]:
                continue
            if rule["count"] is not None and rule["count"] <= 0:
                continue
            if rec.get(rule["field"]) != rule["equals"]:
                continue
            if rule["count"] is not None:
                rule["count"] -= 1
            raise RecordError(rule["statusCode"], rule["message"], [rule["field"]])


def _stored(field, value):
    # Salesforce keeps an empty text value as null, and a null checkbox as unchecked.
    if value == "":
        return None
    if value is None and field.type == "boolean":
        return False
    return value


def _not_writable(names):
    return RecordError("INVALID_FIELD_FOR_INSERT_UPDATE",
                       f"Unable to create/update fields: {', '.join(names)}. Please check the security settings "
                       "of this field and verify that it is read/write for your profile or permission set.",
                       names)
