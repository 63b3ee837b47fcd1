"""Hostile input and hostile answers through a real worker: every job ends in a final state.

* Listings that ingest but carry every trap the desktop could send (XML
  entities and a DOCTYPE in every text, control characters, bidi and
  zero-width characters, the longest description, 200 images, no image or
  price at all) are transferred by a real worker process. Each job ends in a
  final state — delivered, or ``failed`` with the unmet conditions — and the
  worker is still running.
* A marketplace answers with a billion-laughs receipt, an external-entity
  receipt, or an error whose body is a billion-laughs document. The HTTP
  transport refuses to parse them; a refused receipt is recorded as the
  listing's failure with the reason, and no file content leaks into it. The
  next transfer, with the same document and so the same idempotency key, is
  answered with the marketplace's first answer: nothing is created twice.
"""

from __future__ import annotations

import json

import bench_common as _common
from fault_cluster import DELIVERED, MARKETPLACES, Cluster, marks

from syndication.ingest import ingest_document
from syndication.records import FINAL_STATES

pytestmark = marks()

TRAPS = '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>&e;&amp;&#0;<![CDATA[ ]]> ]]>"<b>'
CONTROL = "Fin\x00\x01\x08\x0b\x0c\x1b\x7f\ufffe villa"
BIDI = "Villa \u202e\u200b\u2066🏠\u0301 i sol"

BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    b"<receipt><marketplaceId>&lol3;</marketplaceId></receipt>"
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE receipt [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b"<receipt><marketplaceId>&xxe;</marketplaceId><status>published</status></receipt>"
)


def texts(record: dict, value: str) -> None:
    record["headline"] = value
    record["short_description"] = value
    record["description"] = value
    record["address"].update(street=value, city=value, area=value)
    for image in record["images"]:
        image["caption"] = value


def hostile_listings() -> list[dict]:
    listings = list(_common.listings(7, "HOSTILE", prefix="X", seed=3))
    texts(listings[0], TRAPS)
    texts(listings[1], CONTROL)
    texts(listings[2], BIDI)
    listings[3]["description"] = "Lång beskrivning " * 2_940
    listings[4]["images"] = [{"url": f"https://media.example.se/X5/{n}.jpg", "order": n % 9,
                              "caption": TRAPS} for n in range(200)]
    listings[5].update(images=[], price=None, headline=None, address=None)
    listings[6].update(category="lantbruk", orientations=["fritid", "hastgard"])
    return listings


def test_hostile_listings_end_in_a_final_state_and_the_worker_survives(cluster: Cluster) -> None:
    document = _common.input_document(0, "HOSTILE") | {"listings": hostile_listings()}
    raw = json.dumps(document).encode()
    report = ingest_document(cluster.engine, raw)
    assert report.errors == [], [str(e) for e in report.errors]
    ids = sorted(report.listings)
    worker = cluster.start_worker("dramatiq")
    request = cluster.transfer("--office", "HOSTILE")

    outcome = cluster.wait_for(request, 120)
    assert outcome.finished, f"{outcome.done}/{outcome.total}: {outcome.counts_text()}"
    cluster.assert_every_pair_final(ids, MARKETPLACES, FINAL_STATES)
    rows = cluster.statuses()
    for listing_id in ids:
        for name in MARKETPLACES:
            row = rows[(listing_id, name)]
            if row.state == "failed":
                assert listing_id == "X00006", f"{listing_id} on {name}: {row.error}"
                assert row.error and "image" in row.error.lower(), row.error
            else:
                assert row.state in DELIVERED
    assert worker.poll() is None, "the worker died on hostile listings"
    cluster.assert_nothing_created_twice()
    for received in cluster.sandbox["hemnet"].documents(listing_id="X00001"):
        assert b"<!DOCTYPE" not in received.document and b"&lt;!DOCTYPE" in received.document


def test_hostile_receipts_are_refused_recorded_and_never_duplicate(cluster: Cluster) -> None:
    ids = cluster.ingest(1)
    cluster.sandbox["hemnet"].faults.garble_next(1, BILLION_LAUGHS)
    cluster.sandbox["blocket"].faults.garble_next(1, EXTERNAL_ENTITY)
    cluster.sandbox["hittahem"].faults.fail_next(1, status=500, body=BILLION_LAUGHS)
    worker = cluster.start_worker("dramatiq")

    first = cluster.wait_for(cluster.transfer("--object", ids[0]), 120)
    assert first.finished, first
    rows = cluster.statuses()
    for name in ("hemnet", "blocket"):
        row = rows[(ids[0], name)]
        assert row.state == "failed", (name, row.state, row.error)
        assert "DOCTYPE" in (row.error or "") or "entit" in (row.error or "").lower(), row.error
        assert "root:" not in (row.error or "") and "lollol" not in (row.error or "")
    assert rows[(ids[0], "hittahem")].state in DELIVERED, rows[(ids[0], "hittahem")].error

    second = cluster.wait_for(cluster.transfer("--object", ids[0]), 120)
    assert second.finished and second.failed == 0, second.failures
    cluster.assert_every_pair_final(ids, MARKETPLACES, DELIVERED)
    for name in MARKETPLACES:
        assert cluster.sandbox[name].creations[ids[0]] == 1, name
    assert cluster.sandbox["hemnet"].replays + cluster.sandbox["blocket"].replays >= 2
    assert worker.poll() is None
