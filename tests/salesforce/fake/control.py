"""The control API under /_fake/: plain JSON knobs for tests, no auth, never counted as
API calls. Errors answer 400 {"error": "..."}.
"""

import ids
from clock import format_ms, parse_datetime
from schema import custom_field

FAULT_BODIES = {
    500: ("UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include this ErrorId if you contact support: 1234567890-12345 (-1234567890)"),
    502: ("SERVER_UNAVAILABLE", "Bad gateway"),
    503: ("SERVER_UNAVAILABLE", "Server is unavailable, please try again later."),
    504: ("SERVER_UNAVAILABLE", "Request timed out"),
    401: ("INVALID_SESSION_ID", "Session expired or invalid"),
    403: ("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
    404: ("NOT_FOUND", "The requested resource does not exist"),
    400: ("UNKNOWN_EXCEPTION", "An unexpected error occurred."),
}
CONFIG_TYPES = {
    "client_id": str, "client_secret": str, "access_token_ttl": (int, float), "rotate_refresh_tokens": bool,
    "password_grant_refresh_token": bool, "daily_limit": int, "org_name": str, "id_limit": int,
    "redirect_uris": list,
}


class ControlError(Exception):
    pass


def _need(body, key, kind=None):
    if not isinstance(body, dict) or key not in body:
        raise ControlError(f"missing '{key}'")
    value = body[key]
    if kind is not None and not isinstance(value, kind):
        raise ControlError(f"'{key}' has the wrong type")
    return value


def _when(text, key):
    ms = parse_datetime(text, require_zone=False) if isinstance(text, str) else None
    if ms is None:
        raise ControlError(f"'{key}' must be an ISO 8601 datetime")
    return ms


def handle(state, method, parts, body):
    """(status, body) for /_fake/<parts...>; state.lock is held by the caller."""
    org = state.org
    route = "/".join(parts[:1])
    try:
        if route == "reset" and method == "POST":
            state.reset()
            return 200, summary(state)
        if route == "state" and method == "GET":
            return 200, summary(state)
        if route == "clock" and method == "POST":
            if body.get("real"):
                state.clock.real()
            elif "now" in body:
                state.clock.freeze(_when(body["now"], "now"))
            elif "advance" in body:
                try:
                    state.clock.advance(float(body["advance"]))
                except ValueError as e:
                    raise ControlError(str(e))
            else:
                raise ControlError("send {\"now\": ISO}, {\"advance\": seconds} or {\"real\": true}")
            return 200, {"now": format_ms(state.clock.now_ms()), "frozen": state.clock.frozen_ms is not None}
        if route == "config":
            if method == "POST":
                for key, value in body.items():
                    if key == "api_usage":
                        state.set_usage(int(value))
                        continue
                    if key not in CONFIG_TYPES or not isinstance(value, CONFIG_TYPES[key]) or isinstance(value, bool) != (CONFIG_TYPES[key] is bool):
                        raise ControlError(f"unknown config key or wrong type: {key}")
                    org.config[key] = value
                    if key == "org_name":
                        org.rename_org(value)
            return 200, {**org.config, "api_usage": state.used()}
        if route == "faults":
            if method == "POST":
                status = int(_need(body, "status"))
                code, message = FAULT_BODIES.get(status, ("UNKNOWN_EXCEPTION", "An unexpected error occurred."))
                state.faults.append({"status": status, "count": int(body.get("count", 1)),
                                     "path_contains": body.get("path_contains"), "method": body.get("method"),
                                     "errorCode": body.get("errorCode", code), "message": body.get("message", message)})
            elif method == "DELETE":
                state.faults.clear()
            return 200, {"faults": state.faults}
        if route == "record-failures":
            if method == "POST":
                obj = _need(body, "object", str)
                field = _need(body, "field", str)
                t = org.schema.get(obj)
                if t is None or t.field(field) is None:
                    raise ControlError("object and field must exist")
                ops = body.get("operations", ["insert", "update"])
                org.record_failures.append({
                    "object": t.name, "field": t.field(field).name, "equals": _need(body, "equals"),
                    "statusCode": body.get("statusCode", "FIELD_CUSTOM_VALIDATION_EXCEPTION"),
                    "message": body.get("message", "Record failed a validation rule"),
                    "count": body.get("count"), "operations": ops})
            elif method == "DELETE":
                org.record_failures.clear()
            return 200, {"recordFailures": org.record_failures}
        if route == "users" and method == "POST":
            specs = body if isinstance(body, list) else [body]
            try:
                users = [org.create_user(s) for s in specs]
            except ValueError as e:
                raise ControlError(str(e))
            except Exception as e:
                raise ControlError(getattr(e, "message", str(e)))
            return 200, {"ids": [u["Id"] for u in users], "users": users}
        if route == "queues" and method == "POST":
            try:
                rec = org.create_queue(body)
            except ValueError as e:
                raise ControlError(str(e))
            return 200, {"id": rec["Id"], "queue": rec}
        if route == "records" and len(parts) >= 2:
            t = org.schema.get(parts[1])
            if t is None:
                raise ControlError(f"no such object {parts[1]}")
            if method == "POST" and len(parts) == 2:
                if not isinstance(body, list):
                    raise ControlError("send a JSON array of records")
                try:
                    created = org.bulk_insert(t.name, body, org.admin_id)
                except ValueError as e:
                    raise ControlError(str(e))
                return 200, {"ids": created}
            if method == "GET" and len(parts) == 3:
                rid = ids.normalize(parts[2])
                rec = org.records[t.name].get(rid) if rid else None
                if rec is None:
                    return 404, {"error": "no such record (never existed or purged)"}
                return 200, {"record": rec, "deletedDate": org.deleted_at[t.name].get(rid)}
        if route == "fields" and method == "POST":
            t = org.schema.get(_need(body, "object", str))
            if t is None:
                raise ControlError("no such object")
            try:
                f = custom_field(body, org.schema)
            except (ValueError, TypeError) as e:
                raise ControlError(str(e))
            if t.field(f.name) is not None:
                raise ControlError(f"{t.name} already has a field {f.name}")
            t.add_field(f)
            default = bool(f.default) if f.type == "boolean" else None
            for rid, rec in list(org.records[t.name].items()):
                org.records[t.name][rid] = {**rec, f.name: default}
            return 200, {"field": f.describe()}
        if route == "assignment-rule" and method == "POST":
            obj = _need(body, "object", str)
            if obj not in ("Lead", "Account"):
                raise ControlError("assignment rules run on Lead and Account")
            owner = body.get("ownerId")
            if owner is None:
                org.assignment_rules.pop(obj, None)
            else:
                norm = ids.normalize(owner)
                if not norm or (org.live("User", norm) is None and org.records["Group"].get(norm) is None):
                    raise ControlError("ownerId must name a user or queue")
                org.assignment_rules[obj] = norm
            return 200, {"assignmentRules": org.assignment_rules}
        if route == "merge" and method == "POST":
            try:
                return 200, org.merge(_need(body, "object", str), _need(body, "master", str),
                                      _need(body, "losers", list), org.admin_id)
            except ValueError as e:
                raise ControlError(str(e))
        if route == "convert-lead" and method == "POST":
            try:
                return 200, org.convert_lead(body, org.admin_id)
            except ValueError as e:
                raise ControlError(str(e))
        if route == "purge-deleted-log" and method == "POST":
            org.purge_deleted(_when(_need(body, "before"), "before"), body.get("object"))
            return 200, {"earliestDateAvailable": {k: format_ms(v) for k, v in org.purge_marks.items()}}
        if route == "requests":
            if method == "DELETE":
                state.request_log.clear()
            return 200, {"requests": list(state.request_log)}
        if route == "tokens" and method == "GET":
            return 200, {"tokens": state.auth.listing()}
    except ControlError as e:
        return 400, {"error": str(e)}
    return 404, {"error": f"no control route {method} /_fake/{'/'.join(parts)}"}


def summary(state):
    org = state.org
    counts = {}
    for name, recs in org.records.items():
        deleted = sum(1 for r in recs.values() if r.get("IsDeleted"))
        counts[name] = {"live": len(recs) - deleted, "deleted": deleted}
    return {
        "now": format_ms(state.clock.now_ms()), "clockFrozen": state.clock.frozen_ms is not None,
        "orgId": org.org_id, "adminUserId": org.admin_id, "counts": counts,
        "config": {**org.config, "api_usage": state.used()},
        "assignmentRules": org.assignment_rules, "faults": state.faults,
        "recordFailures": org.record_failures, "openCursors": len(org.cursors),
        "urls": state.urls,
    }
