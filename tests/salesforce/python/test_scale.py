"""A benchmark-sized org: 100,000 contacts loaded and read back page by page in seconds."""

import time

from sf_support import load

ROWS = 100_000


def test_hundred_thousand_contacts_page_through_in_seconds(fake, sf):
    started = time.monotonic()
    ids = load(fake, "Contact", [{"FirstName": f"F{i}", "LastName": f"L{i:06d}", "Email": f"c{i}@example.com"}
                                 for i in range(ROWS)])
    loaded = time.monotonic()
    seen = [r["Id"] for r in sf.query_all_iter(
        "SELECT Id, LastName, Email, SystemModstamp FROM Contact "
        "WHERE SystemModstamp > 2000-01-01T00:00:00Z ORDER BY SystemModstamp, Id")]
    read = time.monotonic()
    assert seen == ids
    assert sf.query("SELECT COUNT() FROM Contact WHERE Email LIKE '%7@example.com'")["totalSize"] == ROWS // 10
    assert loaded - started < 30, f"loading took {loaded - started:.1f}s"
    assert read - loaded < 30, f"reading took {read - loaded:.1f}s"
