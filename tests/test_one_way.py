"""One way to decide what a transfer sends, one key format, one history writer.

The transfer job, ``preview``, the full-feed export and a reconciliation
repair must give the same answer because they ask the same function
(:func:`syndication.transfer.outgoing.outgoing`). The structural tests fail
when a module assembles "decide → conditions → build → hash" itself again,
mints an idempotency key of its own, hashes a document its own way, or
writes the history behind :func:`syndication.store.repository.append_event`;
the behavioural test checks the answers agree on the bundled example.
"""

from __future__ import annotations

import ast
import io
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import Engine, select

from syndication import registry
from syndication.export import export_office
from syndication.ingest import ingest_document
from syndication.preview import preview
from syndication.store.db import session_scope
from syndication.store.models import ListingRow
from syndication.store.repository import load_feed_input
from syndication.transfer import outgoing
from syndication.transfer.common import settled_status

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = [
    path
    for folder in ("syndication", "feeds", "adapters")
    for path in sorted((ROOT / folder).rglob("*.py"))
    if "sandbox" not in path.parts and "portal_standin" not in path.parts
]
"""The production modules (the stand-in marketplaces and portal play the other side)."""


def _calls(path: Path) -> list[tuple[str, int]]:
    """Every ``x.attr(...)`` and ``name(...)`` call in ``path``, with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            found.append((name, node.lineno))
    return found


def _where(name: str) -> set[str]:
    return {
        str(path.relative_to(ROOT)) for path in PRODUCTION
        for called, _ in _calls(path) if called == name
    }


def test_conditions_and_builds_are_asked_for_in_one_place() -> None:
    assert _where("preconditions") <= {"syndication/transfer/outgoing.py",
                                       "syndication/registry.py"}
    assert _where("build_delete") <= {"syndication/transfer/outgoing.py",
                                      "syndication/reconcile.py"}
    assert "syndication/transfer/outgoing.py" in _where("decide")


def test_documents_are_hashed_and_keyed_one_way() -> None:
    # documents in feeds/common.py; photo files, the file names of drops and feeds
    # (from ids), the log reference of a user name at login and the secrets of API keys
    # and session tokens (one format, credentials.py), and the web session cookie's
    # signature (web/session.py) hash other things
    assert _where("sha256") <= {
        "feeds/common.py", "syndication/image_checks.py", "adapters/filedrop.py",
        "syndication/transfer/feed_job.py", "syndication/auth.py", "syndication/credentials.py",
        "syndication/web/session.py",
    }
    for path in PRODUCTION:
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "idempotency_key":
                assert isinstance(node.value, ast.Call), f"{path.name}:{node.value.lineno}"
                func = node.value.func
                assert getattr(func, "id", getattr(func, "attr", "")) == "idempotency_key"


def test_the_history_has_one_writer() -> None:
    assert _where("TransferEventRow") == {"syndication/store/repository.py"}


@pytest.fixture
def example(sqlite_engine: Engine) -> Engine:
    raw = (ROOT / "examples" / "records.json").read_bytes()
    ingest_document(sqlite_engine, raw)
    return sqlite_engine


def test_preview_export_and_the_transfer_agree_on_the_example(example: Engine) -> None:
    """For every listing and marketplace: preview shows a create/update document exactly
    when the export holds the listing, and both agree with :func:`outgoing`."""
    with session_scope(example) as session:
        pairs = []
        for listing_id, office_id in session.execute(select(ListingRow.id, ListingRow.office_id)):
            feed_input = load_feed_input(session, listing_id)
            assert feed_input is not None
            for name in registry.names():
                current = settled_status(session, listing_id, name)
                pairs.append((listing_id, office_id, name, outgoing(feed_input, name, current)))
    exported: dict[tuple[str, str], set[str]] = {}
    for office_id in {p[1] for p in pairs}:
        for name in registry.names():
            out = io.BytesIO()
            export_office(example, name, office_id, out, progress=False)
            root = etree.fromstring(out.getvalue())
            values = set(root.itertext()) | {
                value for element in root.iter() for value in element.attrib.values()
            }
            exported[(office_id, name)] = {p[0] for p in pairs} & values
    assert pairs
    for listing_id, office_id, name, planned in pairs:
        shown = preview(example, listing_id, name)
        publishes = planned.sends and planned.decision.action in ("create", "update")
        assert (shown.document is not None and shown.action in ("create", "update")) is publishes
        assert (listing_id in exported[(office_id, name)]) is publishes, (listing_id, name)
        if planned.sends:
            assert shown.document == planned.document
