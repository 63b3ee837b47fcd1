"""The file-drop transport: atomic, idempotent writes into the outbox."""

from __future__ import annotations

import errno
import os
import threading
from dataclasses import replace

import pytest

from adapters.base import Delivery
from adapters.filedrop import FileDropTransport, local_id
from syndication.errors import PermanentError, TransientError

DOCUMENT = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<listing><externalId>OBJ-1</externalId></listing>\n'
)


def drop(document: bytes = DOCUMENT, **changes: str) -> Delivery:
    base = Delivery("hemnet", "OBJ-1", "KTR-1", "create", document, "hemnet:OBJ-1:create:v1")
    return replace(base, **changes)


def test_a_document_lands_in_the_marketplace_folder(tmp_path):
    receipt = FileDropTransport(tmp_path).send(drop())
    target = tmp_path / "hemnet" / "OBJ-1.create.xml"
    assert target.read_bytes() == DOCUMENT
    assert receipt.marketplace_id == local_id("hemnet", "OBJ-1")
    assert receipt.marketplace_id.startswith("FD-") and not receipt.published
    assert [p.name for p in target.parent.iterdir()] == ["OBJ-1.create.xml"]


def test_the_local_id_is_stable_per_listing_and_marketplace(tmp_path):
    transport = FileDropTransport(tmp_path)
    first = transport.send(drop())
    update = transport.send(drop(DOCUMENT + b"<!-- v2 -->", action="update"))
    other = transport.send(drop(marketplace="blocket"))
    assert first.marketplace_id == update.marketplace_id != other.marketplace_id


def test_the_same_delivery_again_writes_nothing(tmp_path):
    transport = FileDropTransport(tmp_path)
    transport.send(drop())
    target = tmp_path / "hemnet" / "OBJ-1.create.xml"
    before = os.stat(target)
    receipt = transport.send(drop())
    after = os.stat(target)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert "already" in receipt.message


def test_a_new_version_replaces_the_file_whole(tmp_path):
    transport = FileDropTransport(tmp_path)
    transport.send(drop())
    transport.send(drop(DOCUMENT.replace(b"OBJ-1<", b"OBJ-1 <"), idempotency_key="v2"))
    target = tmp_path / "hemnet" / "OBJ-1.create.xml"
    assert target.read_bytes() == DOCUMENT.replace(b"OBJ-1<", b"OBJ-1 <")
    assert len(list(target.parent.iterdir())) == 1


def test_concurrent_drops_leave_one_whole_document(tmp_path):
    transport = FileDropTransport(tmp_path)
    versions = [DOCUMENT + b"<!--" + bytes([65 + n]) * 200_000 + b"-->" for n in range(8)]
    threads = [
        threading.Thread(target=transport.send, args=(drop(v, idempotency_key=str(n)),))
        for n, v in enumerate(versions)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    target = tmp_path / "hemnet" / "OBJ-1.create.xml"
    assert target.read_bytes() in versions
    assert [p.name for p in target.parent.iterdir()] == ["OBJ-1.create.xml"]


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    transport = FileDropTransport(tmp_path)
    transport.send(drop())

    def full_disk(*_args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(TransientError, match="No space left") as caught:
        transport.send(drop(b"<listing>new</listing>", idempotency_key="v2"))
    assert (caught.value.listing_id, caught.value.marketplace) == ("OBJ-1", "hemnet")
    folder = tmp_path / "hemnet"
    assert [p.name for p in folder.iterdir()] == ["OBJ-1.create.xml"]
    assert (folder / "OBJ-1.create.xml").read_bytes() == DOCUMENT


def test_a_forbidden_outbox_is_permanent(tmp_path, monkeypatch):
    def forbidden(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("tempfile.mkstemp", forbidden)
    with pytest.raises(PermanentError, match="Permission denied"):
        FileDropTransport(tmp_path).send(drop())


@pytest.mark.parametrize("listing_id", ["../../etc/passwd", "a/b", "..", "OBJ 1 ö"])
def test_an_id_never_leaves_its_marketplace_folder(tmp_path, listing_id):
    transport = FileDropTransport(tmp_path / "outbox")
    transport.send(drop(listing_id=listing_id))
    written = [p for p in (tmp_path / "outbox").rglob("*") if p.is_file()]
    assert len(written) == 1
    assert written[0].parent == tmp_path / "outbox" / "hemnet"
    assert written[0].name.endswith(".create.xml")
    assert written[0] == transport.path_for(drop(listing_id=listing_id))
