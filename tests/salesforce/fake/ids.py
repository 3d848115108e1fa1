"""Salesforce record ids: 15-character case-sensitive form, 18-character case-safe form.

The 18-character form appends three characters that encode which of the first fifteen
are upper case, so an 18-character id identifies a record whatever its letter case.
Ids are minted from a counter in base 62 with the alphabet in ASCII order, so sorting
ids as strings sorts them in creation order, as Salesforce's own ids roughly do.
"""

import string

KEY_PREFIXES = {
    "Account": "001",
    "Contact": "003",
    "User": "005",
    "Opportunity": "006",
    "Group": "00G",
    "Organization": "00D",
    "Lead": "00Q",
    "Task": "00T",
}

_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_ALNUM = frozenset(string.ascii_letters + string.digits)
# Characters 4-5 of a real id name the pod the record was created on.
POD = "Fk"


def checksum(id15: str) -> str:
    out = []
    for chunk in range(3):
        flags = 0
        for pos, ch in enumerate(id15[chunk * 5:chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                flags |= 1 << pos
        out.append(_SUFFIX_ALPHABET[flags])
    return "".join(out)


def make_id(prefix: str, counter: int) -> str:
    digits = []
    n = counter
    for _ in range(9):
        n, r = divmod(n, 62)
        digits.append(_BASE62[r])
    if n:
        raise OverflowError("id counter exhausted")
    id15 = prefix + POD + "0" + "".join(reversed(digits))
    return id15 + checksum(id15)


def looks_like_id(value) -> bool:
    return isinstance(value, str) and len(value) in (15, 18) and all(c in _ALNUM for c in value)


def normalize(value):
    """The canonical 18-character id for a 15- or 18-character id, or None if malformed."""
    if not looks_like_id(value):
        return None
    if len(value) == 15:
        return value + checksum(value)
    suffix = value[15:].upper()
    chars = list(value[:15])
    for chunk, code in enumerate(suffix):
        flags = _SUFFIX_ALPHABET.find(code)
        if flags < 0:
            return None
        for pos in range(5):
            i = chunk * 5 + pos
            upper = bool(flags & (1 << pos))
            ch = chars[i]
            if ch.isdigit():
                if upper:
                    return None
            else:
                chars[i] = ch.upper() if upper else ch.lower()
    id15 = "".join(chars)
    return id15 + suffix


def prefix_of(id18: str) -> str:
    return id18[:3]


def type_for_prefix(prefix: str):
    for name, p in KEY_PREFIXES.items():
        if p == prefix:
            return name
    return None
