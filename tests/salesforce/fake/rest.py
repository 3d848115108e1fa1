"""The REST API under /services/data/vNN.N/: describes, queries, replication feeds, single
records, upserts, sObject Collections and limits.

Each handler returns (status, body or None, extra headers) or raises ApiError.
"""

import json

import ids
from clock import parse_datetime
from schema import child_relationships
from store import ApiError, Ctx, RecordError, api_error

MAX_COLLECTION = 200
MAX_RETRIEVE_IDS = 2000
ROLLED_BACK = {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
               "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
               "fields": []}
NOT_FOUND = ("NOT_FOUND", "The requested resource does not exist")


def not_found():
    return api_error(404, *NOT_FOUND)


class Call:
    """One authenticated REST call: the request plus what the server layer worked out."""

    def __init__(self, org, req, version, parts, token, usage):
        self.org = org
        self.req = req
        self.version = version
        self.parts = parts
        self.token = token
        self.usage = usage
        self.user_id = token["user_id"]

    @property
    def vnum(self):
        return float(self.version)

    def ctx(self):
        header = self.req.headers.get("Sforce-Auto-Assign")
        return Ctx(self.user_id, auto_assign=not (header and header.strip().lower() == "false"))

    def json_body(self):
        ctype = self.req.headers.get("Content-Type")
        if ctype and "json" not in ctype.lower():
            raise api_error(415, "UNSUPPORTED_MEDIA_TYPE",
                            f"Content-Type header specified in HTTP request is not supported: {ctype}")
        text = self.req.body.decode("utf-8", "replace")
        if not text.strip():
            raise api_error(400, "JSON_PARSER_ERROR", "No content to map due to end-of-input")
        try:
            return json.loads(text), text
        except json.JSONDecodeError as e:
            raise api_error(400, "JSON_PARSER_ERROR",
                            f"Unexpected character at [line:{e.lineno}, column:{e.colno}]: {e.msg}")

    def param(self, name):
        values = self.req.query.get(name)
        return values[0] if values else None

    def sobject(self, name):
        for t in self.org.schema.values():
            if t.name.lower() == name.lower():
                return t
        raise not_found()

    def url(self, t, rid):
        return f"/services/data/v{self.version}/sobjects/{t.name}/{rid}"


def method_not_allowed(method, allowed):
    return api_error(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are {','.join(allowed)}")


def dispatch(call: Call):
    p, m = call.parts, call.req.method

    def only(*allowed):
        if m not in allowed:
            raise method_not_allowed(m, allowed)

    if not p:
        only("GET")
        return 200, resources(call), None
    head = p[0]
    if head == "sobjects":
        if len(p) == 1:
            only("GET")
            return 200, describe_global(call), None
        t = call.sobject(p[1])
        if len(p) == 2:
            only("GET", "POST")
            return basic_info(call, t) if m == "GET" else create(call, t)
        if len(p) == 3 and p[2] in ("describe", "updated", "deleted"):
            only("GET")
            if p[2] == "describe":
                return 200, t.describe(call.version, child_relationships(call.org.schema, t.name)), None
            return replication(call, t, p[2])
        if len(p) == 3:
            if p[2].lower() == "id" and m == "POST":
                return create(call, t)
            only("GET", "PATCH", "DELETE")
            return record(call, t, p[2])
        if len(p) == 4:
            only("GET", "PATCH", "DELETE")
            return by_external_id(call, t, p[2], p[3])
        raise not_found()
    if head in ("query", "queryAll"):
        only("GET")
        batch = batch_size(call.req.headers.get("Sforce-Query-Options"))
        if len(p) == 1:
            q = call.param("q")
            if q is None:
                raise api_error(400, "MALFORMED_QUERY", "A query string has to be specified")
            return 200, call.org.query(q, head == "queryAll", call.version, batch, call.user_id, head), None
        if len(p) == 2:
            return 200, call.org.query_more(p[1], call.version, batch, call.user_id), None
        raise not_found()
    if head == "limits" and len(p) == 1:
        only("GET")
        return 200, limits(call), None
    if head == "composite" and len(p) >= 2 and p[1] == "sobjects":
        if call.vnum < 42.0:
            raise not_found()
        if len(p) == 2:
            only("POST", "PATCH", "DELETE")
            if m == "DELETE":
                return collection_delete(call)
            return collection_write(call, "create" if m == "POST" else "update", None, None)
        t = call.sobject(p[2])
        if len(p) == 3:
            only("GET", "POST")
            return collection_retrieve(call, t)
        if len(p) == 4:
            only("PATCH")
            if call.vnum < 46.0:
                raise not_found()
            return collection_write(call, "upsert", t, p[3])
    raise not_found()


def batch_size(header):
    # Sforce-Query-Options: batchSize=N asks for 200..2000 rows a page; it is a hint.
    # None without the header: a locator page then keeps the size its query asked for.
    if header:
        for part in header.split(","):
            key, _, value = part.strip().partition("=")
            if key.strip().lower() == "batchsize" and value.strip().isdigit():
                return max(200, min(2000, int(value)))
    return None


def resources(call):
    base = f"/services/data/v{call.version}"
    names = ["sobjects", "query", "queryAll", "limits", "composite", "search", "recent", "tooling"]
    out = {n: f"{base}/{n}" for n in names}
    out["identity"] = f"{call.req.base_url}/id/{call.org.org_id}/{call.user_id}"
    return out


def describe_global(call):
    return {"encoding": "UTF-8", "maxBatchSize": 200,
            "sobjects": [t.global_entry(call.version) for t in sorted(call.org.schema.values(), key=lambda t: t.name)]}


def basic_info(call, t):
    recent = []
    seen = set()
    for rid in reversed(call.org.recent[t.name]):
        rec = call.org.live(t.name, rid)
        if rec is None or rid in seen:
            continue
        seen.add(rid)
        name_field = "Name" if "Name" in t.fields else "Subject" if "Subject" in t.fields else "Id"
        recent.append({"attributes": {"type": t.name, "url": call.url(t, rid)}, "Id": rid,
                       name_field: rec.get(name_field)})
    return 200, {"objectDescribe": t.global_entry(call.version), "recentItems": recent}, None


def limits(call):
    used, limit = call.usage
    return {
        "DailyApiRequests": {"Max": limit, "Remaining": max(limit - used, 0)},
        "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
        "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
        "DataStorageMB": {"Max": 1024, "Remaining": 1024},
        "FileStorageMB": {"Max": 1024, "Remaining": 1024},
        "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
        "HourlyODataCallout": {"Max": 10000, "Remaining": 10000},
    }


def replication(call, t, kind):
    if not t.replicateable:
        raise api_error(400, "INVALID_TYPE", f"sObject type '{t.name}' is not supported for replication")
    start, end = call.param("start"), call.param("end")
    if start is None or end is None:
        raise api_error(400, "MISSING_ARGUMENT", "Both start and end parameters are required")
    start_ms, end_ms = parse_datetime(start, False), parse_datetime(end, False)
    for text, ms in ((start, start_ms), (end, end_ms)):
        if ms is None:
            raise api_error(400, "INVALID_REPLICATION_DATE", f"Invalid date/time: {text}")
    if kind == "updated":
        return 200, call.org.get_updated(t, start_ms, end_ms), None
    return 200, call.org.get_deleted(t, start_ms, end_ms), None


# ---- single records -------------------------------------------------------------------------
def _fields_param(call, t):
    text = call.param("fields")
    if text is None:
        return list(t.fields.values())
    out = []
    for name in text.split(","):
        f = t.field(name.strip())
        if f is None:
            raise api_error(400, "INVALID_FIELD", f"No such column '{name.strip()}' on entity '{t.name}'. "
                            "If you are attempting to use a custom field, be sure to append the '__c' after the "
                            "custom field name. Please reference your WSDL or the describe call for the "
                            "appropriate names.")
        if f not in out:
            out.append(f)
    return out


def _record_or_error(call, t, segment, method):
    norm = ids.normalize(segment)
    if norm is None or norm[:3] != t.key_prefix:
        if method == "GET":
            raise api_error(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {segment}")
        if ids.looks_like_id(segment):
            raise api_error(400, "MALFORMED_ID", f"{t.label} ID: id value of incorrect type: {segment}")
        raise api_error(400, "MALFORMED_ID", f"malformed id {segment}")
    rec = call.org.records[t.name].get(norm)
    if rec is None:
        raise not_found()
    if rec.get("IsDeleted"):
        raise api_error(404, "ENTITY_IS_DELETED", "entity is deleted")
    return norm, rec


def create(call, t):
    body, text = call.json_body()
    values = call.org.coerce(t, body, text)
    try:
        rec = call.org.create(t, values, call.ctx())
    except RecordError as e:
        raise e.as_api_error()
    return 201, {"id": rec["Id"], "success": True, "errors": []}, None


def record(call, t, segment):
    m = call.req.method
    rid, rec = _record_or_error(call, t, segment, m)
    if m == "GET":
        return 200, call.org.project(t, rec, _fields_param(call, t), call.version), None
    try:
        if m == "PATCH":
            body, text = call.json_body()
            call.org.update(t, rid, call.org.coerce(t, body, text), call.ctx())
        else:
            call.org.delete(t, rid, call.ctx())
    except RecordError as e:
        raise e.as_api_error()
    return 204, None, None


def _lookup_field(call, t, name):
    f = t.field(name)
    if f is None or not (f.external_id or f.id_lookup):
        raise api_error(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {name}")
    return f


def _match(call, t, f, value):
    if f.name == "Id":
        norm = ids.normalize(value)
        if norm is None or norm[:3] != t.key_prefix:
            raise api_error(400, "MALFORMED_ID", f"{t.label} ID: id value of incorrect type: {value}")
        rec = call.org.records[t.name].get(norm)
        if rec is not None and rec.get("IsDeleted"):
            raise api_error(404, "ENTITY_IS_DELETED", "entity is deleted")
        return [norm] if rec is not None else []
    return call.org.ext_lookup(t.name, f, call.org.coerce_value(f, value, f.name))


def by_external_id(call, t, field_name, value):
    f = _lookup_field(call, t, field_name)
    m = call.req.method
    found = _match(call, t, f, value)
    if len(found) > 1:
        return 300, [call.url(t, rid) for rid in found], None
    if m == "GET":
        if not found:
            raise not_found()
        rec = call.org.records[t.name][found[0]]
        return 200, call.org.project(t, rec, _fields_param(call, t), call.version), None
    if m == "DELETE":
        if not found:
            raise not_found()
        try:
            call.org.delete(t, found[0], call.ctx())
        except RecordError as e:
            raise e.as_api_error()
        return 204, None, None
    body, text = call.json_body()
    values = call.org.coerce(t, body, text)
    if f.name in values or (f.name != "Id" and "Id" in values):
        raise api_error(400, "INVALID_FIELD", f"The external ID field {f.name} and the Id field can't be "
                        "specified in the request body of an upsert")
    try:
        if found:
            call.org.update(t, found[0], values, call.ctx())
            if call.vnum < 46.0:
                return 204, None, None
            return 200, {"id": found[0], "success": True, "errors": [], "created": False}, None
        if f.name == "Id" or (call.param("updateOnly") or "").lower() == "true":
            raise not_found()
        values[f.name] = call.org.coerce_value(f, value, f.name)
        rec = call.org.create(t, values, call.ctx())
    except RecordError as e:
        raise e.as_api_error()
    body = {"id": rec["Id"], "success": True, "errors": []}
    if call.vnum >= 46.0:
        body["created"] = True
    return 201, body, None


# ---- sObject Collections ----------------------------------------------------------------------
def _collection_body(call):
    body, text = call.json_body()
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise api_error(400, "JSON_PARSER_ERROR", "Cannot deserialize the request: expected {\"allOrNone\": bool, \"records\": [...]}")
    records = body["records"]
    if len(records) > MAX_COLLECTION:
        raise api_error(400, "EXCEEDED_ID_LIMIT",
                        f"record limit reached. cannot submit more than {MAX_COLLECTION} records into this call")
    all_or_none = body.get("allOrNone", False)
    if not isinstance(all_or_none, bool):
        raise api_error(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of boolean for allOrNone")
    return records, all_or_none, text


def _type_of(call, rec, fixed):
    attrs = rec.get("attributes") if isinstance(rec, dict) else None
    name = attrs.get("type") if isinstance(attrs, dict) else None
    if name is None:
        if fixed is not None:
            return fixed
        raise api_error(400, "INVALID_TYPE", "Must send a concrete entity type.")
    try:
        t = call.sobject(name)
    except ApiError:
        raise api_error(400, "INVALID_TYPE", f"sObject type '{name}' is not supported.")
    if fixed is not None and t is not fixed:
        raise api_error(400, "INVALID_TYPE", f"sObject type '{name}' does not match the URL's type {fixed.name}")
    return t


def _run_all(call, items, all_or_none, apply):
    """Apply each item; with allOrNone, undo every write if any item failed."""
    org = call.org
    org.journal = []
    results, failed = [], False
    try:
        for item in items:
            try:
                results.append(apply(item))
            except RecordError as e:
                failed = True
                results.append(("error", item, e))
        if failed and all_or_none:
            org.undo(org.journal)
    finally:
        org.journal = None
    out = []
    for kind, item, payload in results:
        rid = item.get("_id")
        if kind == "error":
            entry = {"id": rid} if rid else {}
            entry.update({"success": False, "errors": [payload.as_item()]})
        elif failed and all_or_none:
            entry = {"id": rid} if rid else {}
            entry.update({"success": False, "errors": [dict(ROLLED_BACK)]})
        else:
            entry = {"id": payload["id"], "success": True, "errors": []}
            if "created" in payload:
                entry["created"] = payload["created"]
        out.append(entry)
    return out


def collection_write(call, op, fixed_type, ext_field):
    records, all_or_none, text = _collection_body(call)
    ctx = call.ctx()
    f = _lookup_field(call, fixed_type, ext_field) if op == "upsert" else None
    items = []
    for raw in records:
        t = _type_of(call, raw, fixed_type)
        body = dict(raw)
        rid_raw = None
        if op == "update" or (op == "upsert" and f.name == "Id"):
            for key in [k for k in body if k.lower() == "id"]:
                rid_raw = body.pop(key)
        items.append({"type": t, "values": call.org.coerce(t, body, text), "rid_raw": rid_raw})

    def apply(item):
        t, values = item["type"], item["values"]
        if op == "create":
            rec = call.org.create(t, values, ctx)
            return ("ok", item, {"id": rec["Id"]})
        if op == "update" or (op == "upsert" and f.name == "Id" and item["rid_raw"] is not None):
            rid = _collection_target(call, t, item["rid_raw"], op == "update")
            item["_id"] = rid
            call.org.update(t, rid, values, ctx)
            return ("ok", item, {"id": rid, **({"created": False} if op == "upsert" else {})})
        if f.name == "Id":
            rec = call.org.create(t, values, ctx)
            return ("ok", item, {"id": rec["Id"], "created": True})
        key = values.pop(f.name, None)
        if key is None:
            raise RecordError("MISSING_ARGUMENT", f"{f.name} not specified", [f.name])
        found = call.org.ext_lookup(t.name, f, key)
        if len(found) > 1:
            raise RecordError("DUPLICATE_EXTERNAL_ID",
                              f"{f.label}: more than one record found for external id field: [{', '.join(found)}]", [f.name])
        if found:
            item["_id"] = found[0]
            call.org.update(t, found[0], values, ctx)
            return ("ok", item, {"id": found[0], "created": False})
        values[f.name] = key
        rec = call.org.create(t, values, ctx)
        return ("ok", item, {"id": rec["Id"], "created": True})

    return 200, _run_all(call, items, all_or_none, apply), None


def _collection_target(call, t, raw, required):
    if raw is None:
        raise RecordError("MISSING_ARGUMENT", "Id not specified in an update call")
    norm = ids.normalize(raw) if isinstance(raw, str) else None
    if norm is None or norm[:3] != t.key_prefix:
        raise RecordError("MALFORMED_ID", f"{t.label} ID: id value of incorrect type: {raw}", ["Id"])
    rec = call.org.records[t.name].get(norm)
    if rec is None:
        raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
    if rec.get("IsDeleted"):
        raise RecordError("ENTITY_IS_DELETED", "entity is deleted")
    return norm


def collection_delete(call):
    raw = call.param("ids")
    if not raw:
        raise api_error(400, "MISSING_ARGUMENT", "ids parameter is required")
    given = raw.split(",")
    if len(given) > MAX_COLLECTION:
        raise api_error(400, "EXCEEDED_ID_LIMIT",
                        f"record limit reached. cannot submit more than {MAX_COLLECTION} records into this call")
    all_or_none = (call.param("allOrNone") or "false").lower() == "true"
    ctx = call.ctx()

    def apply(item):
        norm = ids.normalize(item["raw"])
        t_name = ids.type_for_prefix(norm[:3]) if norm else None
        if norm is None or t_name is None:
            raise RecordError("MALFORMED_ID", f"malformed id {item['raw']}")
        item["_id"] = norm
        rec = call.org.records[t_name].get(norm)
        if rec is None:
            raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        call.org.delete(call.org.schema[t_name], norm, ctx)
        return ("ok", item, {"id": norm})

    return 200, _run_all(call, [{"raw": r.strip()} for r in given], all_or_none, apply), None


def collection_retrieve(call, t):
    if call.req.method == "POST":
        body, _ = call.json_body()
        if not isinstance(body, dict):
            raise api_error(400, "JSON_PARSER_ERROR", "expected {\"ids\": [...], \"fields\": [...]}")
        id_list, field_list = body.get("ids"), body.get("fields")
        if not isinstance(id_list, list) or not isinstance(field_list, list):
            raise api_error(400, "JSON_PARSER_ERROR", "expected {\"ids\": [...], \"fields\": [...]}")
    else:
        id_list = (call.param("ids") or "").split(",") if call.param("ids") else None
        field_list = call.param("fields").split(",") if call.param("fields") else None
    if not id_list:
        raise api_error(400, "MISSING_ARGUMENT", "ids parameter is required")
    if not field_list:
        raise api_error(400, "MISSING_ARGUMENT", "fields parameter is required")
    if len(id_list) > MAX_RETRIEVE_IDS:
        raise api_error(400, "EXCEEDED_ID_LIMIT",
                        f"record limit reached. cannot submit more than {MAX_RETRIEVE_IDS} records into this call")
    call.req.query["fields"] = [",".join(str(x) for x in field_list)]
    fields = _fields_param(call, t)
    out = []
    for raw in id_list:
        norm = ids.normalize(str(raw).strip())
        if norm is None:
            raise api_error(400, "MALFORMED_ID", f"malformed id {raw}")
        rec = call.org.records[t.name].get(norm) if norm[:3] == t.key_prefix else None
        out.append(call.org.project(t, rec, fields, call.version) if rec and not rec.get("IsDeleted") else None)
    return 200, out, None
