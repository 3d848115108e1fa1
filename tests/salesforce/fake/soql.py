"""A strict SOQL subset: tokenizer, recursive-descent parser and compiler.

Anything outside the subset is refused with MALFORMED_QUERY naming the unexpected token,
never ignored: a fake that drops a WHERE term it does not understand answers with rows a
real org would not return, and a sync engine tested against it learns the wrong thing.

Subset: SELECT <fields> | COUNT() FROM <object> [WHERE <condition>]
[ORDER BY <field> [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n].
"""

import re

import ids
from clock import format_ms, parse_date, parse_datetime
from schema import NUMBER_TYPES, STRING_TYPES

MAX_OFFSET = 2000
RESERVED = {
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "NULL", "TRUE", "FALSE", "LIKE", "IN",
    "ORDER", "BY", "LIMIT", "OFFSET", "ASC", "DESC", "NULLS", "GROUP", "HAVING", "WITH",
    "FOR", "USING", "INCLUDES", "EXCLUDES", "TYPEOF", "ROLLUP", "CUBE", "FORMAT", "UPDATE",
    "VIEW", "REFERENCE", "TRACKING", "VIEWSTAT", "SCOPE", "END", "WHEN", "THEN", "ELSE",
}
CLAUSE_WORDS = {"SELECT", "FROM", "WHERE", "ORDER", "LIMIT", "OFFSET", "AND", "OR", "NOT", "BY"}

_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>[+-]?\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
""", re.X)
_WORD_CHAR = re.compile(r"[A-Za-z0-9_.:]")


class SoqlError(Exception):
    def __init__(self, code: str, message: str, pos=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.pos = pos


class Token:
    __slots__ = ("kind", "text", "pos")

    def __init__(self, kind, text, pos):
        self.kind = kind
        self.text = text
        self.pos = pos

    def upper(self):
        return self.text.upper() if self.kind == "ident" else None


def tokenize(q: str) -> list:
    out = []
    i = 0
    n = len(q)
    while i < n:
        ch = q[i]
        if ch == "'":
            j = i + 1
            buf = []
            while j < n and q[j] != "'":
                if q[j] == "\\":
                    if j + 1 >= n:
                        break
                    buf.append(q[j:j + 2])
                    j += 2
                else:
                    buf.append(q[j])
                    j += 1
            if j >= n:
                raise SoqlError("MALFORMED_QUERY", "unexpected token: <EOF> (unterminated string literal)", n)
            out.append(Token("string", "".join(buf), i))
            i = j + 1
            continue
        m = _TOKEN_RE.match(q, i)
        if m is None:
            out.append(Token("punct", ch, i))
            i += 1
            continue
        kind = m.lastgroup
        text = m.group()
        end = m.end()
        # A literal run straight into more word characters (2024-01-01T10 or 12abc) is one bad token.
        if kind in ("datetime", "date", "number") and end < n and _WORD_CHAR.match(q[end]):
            k = end
            while k < n and (_WORD_CHAR.match(q[k]) or q[k] in "+-"):
                k += 1
            out.append(Token("punct", q[i:k], i))
            i = k
            continue
        if kind != "ws":
            out.append(Token(kind, text, i))
        i = end
    out.append(Token("eof", "<EOF>", n))
    return out


class Query:
    def __init__(self):
        self.count = False
        self.fields = []      # select-list tokens
        self.obj = None       # token
        self.where = None     # AST
        self.order = []       # (field token, descending, nulls_last)
        self.limit = None
        self.offset = None


class Parser:
    def __init__(self, text: str):
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self, k=0):
        return self.tokens[min(self.i + k, len(self.tokens) - 1)]

    def next(self):
        tok = self.peek()
        self.i += 1
        return tok

    def unexpected(self, tok=None):
        tok = tok or self.peek()
        shown = tok.text if tok.kind == "eof" else f"'{tok.text}'" if tok.kind != "string" else f"'{tok.text}'"
        raise SoqlError("MALFORMED_QUERY", f"unexpected token: {shown}", tok.pos)

    def keyword(self, word):
        tok = self.peek()
        return tok.kind == "ident" and tok.text.upper() == word

    def expect_keyword(self, word):
        if not self.keyword(word):
            self.unexpected()
        return self.next()

    def field_name(self):
        tok = self.peek()
        if tok.kind != "ident" or tok.text.upper() in RESERVED or "." in tok.text:
            self.unexpected()
        self.i += 1
        if self.peek().kind == "lparen":
            self.unexpected(tok)     # functions and aggregates are outside the subset
        return tok

    def parse(self) -> Query:
        q = Query()
        self.expect_keyword("SELECT")
        if self.keyword("COUNT") and self.peek(1).kind == "lparen":
            self.i += 2
            if self.peek().kind != "rparen":
                self.unexpected()
            self.i += 1
            q.count = True
        else:
            q.fields.append(self.field_name())
            while self.peek().kind == "comma":
                self.i += 1
                q.fields.append(self.field_name())
        self.expect_keyword("FROM")
        tok = self.peek()
        # Object names may collide with keywords (Group); clause words cannot be one.
        if tok.kind != "ident" or tok.text.upper() in CLAUSE_WORDS or "." in tok.text:
            self.unexpected()
        q.obj = self.next()
        if self.keyword("WHERE"):
            self.i += 1
            q.where = self.condition()
        if self.keyword("ORDER") and not q.count:
            self.i += 1
            self.expect_keyword("BY")
            q.order.append(self.order_item())
            while self.peek().kind == "comma":
                self.i += 1
                q.order.append(self.order_item())
        if self.keyword("LIMIT"):
            self.i += 1
            q.limit = self.integer()
        if self.keyword("OFFSET"):
            self.i += 1
            q.offset = self.integer()
            if q.offset > MAX_OFFSET:
                raise SoqlError("NUMBER_OUTSIDE_VALID_RANGE", f"Maximum SOQL offset allowed is {MAX_OFFSET}")
        if self.peek().kind != "eof":
            self.unexpected()
        return q

    def integer(self) -> int:
        tok = self.peek()
        if tok.kind != "number" or not tok.text.isdigit():
            self.unexpected()
        self.i += 1
        return int(tok.text)

    def order_item(self):
        field = self.field_name()
        descending = False
        if self.keyword("ASC"):
            self.i += 1
        elif self.keyword("DESC"):
            self.i += 1
            descending = True
        nulls_last = False
        if self.keyword("NULLS"):
            self.i += 1
            if self.keyword("FIRST"):
                self.i += 1
            elif self.keyword("LAST"):
                self.i += 1
                nulls_last = True
            else:
                self.unexpected()
        return field, descending, nulls_last

    def condition(self):
        # SOQL refuses AND and OR mixed at one level without parentheses.
        first = self.term()
        if self.keyword("AND") or self.keyword("OR"):
            joiner = self.peek().text.upper()
            items = [first]
            while self.keyword(joiner):
                self.i += 1
                items.append(self.term())
            if self.keyword("AND") or self.keyword("OR"):
                self.unexpected()
            return (joiner.lower(), items)
        return first

    def term(self):
        if self.keyword("NOT"):
            self.i += 1
            return ("not", self.term())
        if self.peek().kind == "lparen":
            self.i += 1
            inner = self.condition()
            if self.peek().kind != "rparen":
                self.unexpected()
            self.i += 1
            return inner
        field = self.field_name()
        tok = self.peek()
        if tok.kind == "op":
            self.i += 1
            return ("cmp", field, tok.text, self.value())
        if self.keyword("LIKE"):
            self.i += 1
            return ("like", field, self.value())
        negated = False
        if self.keyword("NOT") and self.peek(1).kind == "ident" and self.peek(1).text.upper() == "IN":
            self.i += 1
            negated = True
        if self.keyword("IN"):
            self.i += 1
            if self.peek().kind != "lparen":
                self.unexpected()
            self.i += 1
            values = [self.value()]
            while self.peek().kind == "comma":
                self.i += 1
                values.append(self.value())
            if self.peek().kind != "rparen":
                self.unexpected()
            self.i += 1
            return ("in", field, negated, values)
        self.unexpected()

    def value(self):
        tok = self.peek()
        if tok.kind in ("string", "number", "date", "datetime"):
            self.i += 1
            return tok
        if tok.kind == "ident" and tok.text.upper() in ("TRUE", "FALSE", "NULL"):
            self.i += 1
            return tok
        self.unexpected()


def _unescape(raw: str, like: bool):
    """The value of a string literal; for LIKE, a regex that honours \\% and \\_."""
    out = []
    i = 0
    simple = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
    while i < len(raw):
        ch = raw[i]
        if ch == "\\":
            nxt = raw[i + 1]
            if nxt in simple:
                out.append(re.escape(simple[nxt]) if like else simple[nxt])
            elif nxt in "%_":
                out.append(re.escape(nxt) if like else "\\" + nxt)
            else:
                raise SoqlError("MALFORMED_QUERY", f"Invalid string literal '{raw}'. Illegal character sequence '\\{nxt}' in string literal.")
            i += 2
            continue
        if like:
            out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        else:
            out.append(ch)
        i += 1
    return "".join(out)


class Compiled:
    def __init__(self, sobject, fields, count, predicate, order, limit, offset, id_candidates):
        self.sobject = sobject
        self.fields = fields          # list of Field
        self.count = count
        self.predicate = predicate    # callable(record) -> bool, or None
        self.order = order            # list of (Field, descending, nulls_last)
        self.limit = limit
        self.offset = offset
        self.id_candidates = id_candidates   # set of ids the WHERE clause confines rows to, or None


def _type_error(field, expected, quoted, tok=None):
    hint = "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
    return SoqlError("INVALID_QUERY_FILTER_OPERATOR",
                     f"value of filter criterion for field '{field.name}' must be of type {expected} and {hint}",
                     tok.pos if tok is not None else None)


def _literal(field, tok):
    """The comparable value of a literal for a field, checked against the field's type."""
    kind, text = tok.kind, tok.text
    ftype = field.type
    if kind == "ident" and text.upper() == "NULL":
        # A checkbox is never null: '= null' means unchecked, as Salesforce documents.
        return False if ftype == "boolean" else None
    if ftype in ("id", "reference"):
        if kind != "string":
            raise _type_error(field, "id", True, tok)
        value = _unescape(text, False)
        if value == "":
            return None
        norm = ids.normalize(value)
        if norm is None:
            raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {value}", tok.pos)
        return norm
    if ftype in STRING_TYPES:
        if kind != "string":
            raise _type_error(field, "string", True, tok)
        value = _unescape(text, False)
        return value.lower() if value != "" else None
    if ftype == "boolean":
        if kind != "ident":
            raise _type_error(field, "boolean", False, tok)
        return text.upper() == "TRUE"
    if ftype in NUMBER_TYPES:
        if kind != "number":
            raise _type_error(field, "double" if ftype != "int" else "int", False, tok)
        return float(text) if "." in text else int(text)
    if ftype == "date":
        if kind != "date" or parse_date(text) is None:
            raise _type_error(field, "date", False, tok)
        return text
    if ftype == "datetime":
        ms = parse_datetime(text) if kind == "datetime" else None
        if ms is None:
            raise _type_error(field, "dateTime", False, tok)
        return format_ms(ms)
    raise SoqlError("INVALID_FIELD", f"field '{field.name}' can not be filtered in a query call")


def _getter(field):
    name = field.name
    if field.type in STRING_TYPES:
        def get(r):
            v = r.get(name)
            return v.lower() if v is not None else None
        return get
    return lambda r: r.get(name)


def _compile_node(node, resolve):
    kind = node[0]
    if kind in ("and", "or"):
        parts = [_compile_node(n, resolve) for n in node[1]]
        if kind == "and":
            return lambda r: all(p(r) for p in parts)
        return lambda r: any(p(r) for p in parts)
    if kind == "not":
        inner = _compile_node(node[1], resolve)
        return lambda r: not inner(r)
    field = resolve(node[1], filtering=True)
    get = _getter(field)
    if kind == "like":
        if field.type not in STRING_TYPES:
            raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", f"invalid operator on {field.type} field: LIKE")
        tok = node[2]
        if tok.kind != "string":
            raise _type_error(field, "string", True, tok)
        rx = re.compile("^" + _unescape(tok.text, True) + "$", re.S | re.I)
        name = field.name
        return lambda r: (v := r.get(name)) is not None and rx.match(v) is not None
    if kind == "in":
        if field.type == "boolean":
            raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", "invalid operator on boolean field: IN")
        values = {_literal(field, t) for t in node[3]}
        if node[2]:
            return lambda r: get(r) not in values
        return lambda r: get(r) in values
    op, lit = node[2], _literal(field, node[3])
    if field.type == "boolean" and op not in ("=", "!=", "<>"):
        raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", f"invalid operator on boolean field: {op}")
    if op == "=":
        return lambda r: get(r) == lit
    if op in ("!=", "<>"):
        return lambda r: get(r) != lit
    if lit is None:
        return lambda r: False
    cmp = {"<": lambda a: a < lit, "<=": lambda a: a <= lit,
           ">": lambda a: a > lit, ">=": lambda a: a >= lit}[op]
    return lambda r: (v := get(r)) is not None and cmp(v)


def _id_candidates(node):
    """Ids a WHERE clause confines rows to, when it says so at its top level (an index hint)."""
    if node is None:
        return None
    if node[0] == "and":
        for part in node[1]:
            found = _id_candidates(part)
            if found is not None:
                return found
        return None
    if node[0] == "cmp" and node[2] == "=" and node[1].text.lower() == "id" and node[3].kind == "string":
        norm = ids.normalize(_unescape(node[3].text, False))
        return {norm} if norm else None
    if node[0] == "in" and not node[2] and node[1].text.lower() == "id":
        out = set()
        for t in node[3]:
            norm = ids.normalize(_unescape(t.text, False)) if t.kind == "string" else None
            if norm is None:
                return None
            out.add(norm)
        return out
    return None


def compile_query(text: str, schema: dict) -> Compiled:
    if not text or not text.strip():
        raise SoqlError("MALFORMED_QUERY", "A query string has to be specified")
    q = Parser(text).parse()
    sobject = None
    for name, t in schema.items():
        if name.lower() == q.obj.text.lower():
            sobject = t
    if sobject is None:
        raise SoqlError("INVALID_TYPE",
                        f"sObject type '{q.obj.text}' is not supported. If you are attempting to use a custom object, "
                        "be sure to append the '__c' after the entity name. Please reference your WSDL or the "
                        "describe call for the appropriate names.", q.obj.pos)

    def resolve(tok, filtering=False, sorting=False):
        f = sobject.field(tok.text)
        if f is None:
            raise SoqlError("INVALID_FIELD",
                            f"No such column '{tok.text}' on entity '{sobject.name}'. If you are attempting to use "
                            "a custom field, be sure to append the '__c' after the custom field name. Please "
                            "reference your WSDL or the describe call for the appropriate names.", tok.pos)
        if filtering and not f.filterable:
            raise SoqlError("INVALID_FIELD", f"field '{f.name}' can not be filtered in a query call", tok.pos)
        if sorting and not f.sortable:
            raise SoqlError("INVALID_FIELD", f"field '{f.name}' can not be sorted in a query call", tok.pos)
        return f

    fields = []
    seen = set()
    for tok in q.fields:
        f = resolve(tok)
        if f.name in seen:
            raise SoqlError("MALFORMED_QUERY", f"duplicate field selected: {f.name}", tok.pos)
        seen.add(f.name)
        fields.append(f)
    predicate = _compile_node(q.where, resolve) if q.where is not None else None
    order = [(resolve(tok, sorting=True), desc, nulls_last) for tok, desc, nulls_last in q.order]
    return Compiled(sobject, fields, q.count, predicate, order, q.limit, q.offset,
                    _id_candidates(q.where))


def sort_rows(rows: list, order: list) -> list:
    # Stable sorts applied from the last key to the first give a multi-key order in
    # which each key keeps its own direction and null placement (nulls first unless told).
    for field, descending, nulls_last in reversed(order):
        get = _getter(field)
        null_high = nulls_last != descending

        def key(r, get=get, null_high=null_high):
            v = get(r)
            if v is None:
                return (1 if null_high else 0, 0)
            return (0 if null_high else 1, v)
        rows.sort(key=key, reverse=descending)
    return rows


def format_error(text: str, err: SoqlError) -> str:
    """Salesforce's layout: the query line, a caret under the culprit, the position, the reason."""
    if err.pos is None:
        return err.message
    before = text[:err.pos]
    row = before.count("\n") + 1
    line_start = before.rfind("\n") + 1
    line_end = text.find("\n", err.pos)
    line = text[line_start: line_end if line_end >= 0 else len(text)]
    col = err.pos - line_start
    return f"\n{line}\n{' ' * col}^\nERROR at Row:{row}:Column:{col + 1}\n{err.message}"
