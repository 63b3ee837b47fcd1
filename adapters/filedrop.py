"""The file-drop transport: each document becomes a file in the outbox.

``<outbox>/<marketplace>/<listing_id>.<action>.xml`` — the marketplace (or an
agency's own uploader) collects the files from there. Writes are atomic: the
document goes to a temporary file in the same folder, is flushed to disk and
then renamed over the target, so a reader never sees half a document and a
crash leaves either the old file or the new one. This is the default transport
when no marketplaces file is configured.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from pathlib import Path
from urllib.parse import quote

from adapters.base import Delivery, Receipt, Transport
from syndication.errors import PermanentError, TransientError
from syndication.logs import get_logger

PERMANENT_ERRNOS = {
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENAMETOOLONG,
    errno.EISDIR,
    errno.ENOTDIR,
}
FILE_DROP_ID_PREFIX = "FD-"
"""How a file drop's receipt id starts: a file in a folder is not the marketplace's own id,
so a history event carrying one is not an accepted delivery to the marketplace (R7)."""
MAX_STEM = 180
"""Longest encoded listing id used as is in a file name (file systems allow 255 bytes)."""


def local_id(marketplace: str, listing_id: str) -> str:
    """The stable id a file drop gives a listing (``FD-…``), the same on every drop."""
    digest = hashlib.sha256(f"{marketplace}\0{listing_id}".encode()).hexdigest()
    return f"{FILE_DROP_ID_PREFIX}{digest[:12].upper()}"


class FileDropTransport(Transport):
    """Writes documents into ``outbox``; one instance may serve every marketplace."""

    def __init__(self, outbox: Path | str) -> None:
        self.outbox = Path(outbox)

    def path_for(self, delivery: Delivery) -> Path:
        """Where a delivery lands. Names are percent-encoded so an id can never
        leave its marketplace folder; an id too long for a file name is cut and
        completed with a hash of the whole id, so it stays unique."""
        folder = self.outbox / quote(delivery.marketplace, safe="")
        stem = quote(delivery.listing_id, safe="")
        if len(stem) > MAX_STEM:
            digest = hashlib.sha256(delivery.listing_id.encode()).hexdigest()[:16]
            stem = f"{stem[: MAX_STEM - 17].rstrip('%0123456789ABCDEF')}~{digest}"
        return folder / f"{stem}.{quote(delivery.action, safe='')}.xml"

    def send(self, delivery: Delivery) -> Receipt:
        """Drop the document; a re-drop of the same document writes nothing new.

        The idempotency key is derived from the document version, so "same key"
        and "same bytes at the same place" coincide; comparing the bytes also
        holds across restarts without keeping a key index.
        """
        log = get_logger(listing_id=delivery.listing_id, marketplace=delivery.marketplace)
        target = self.path_for(delivery)
        receipt_id = local_id(delivery.marketplace, delivery.listing_id)
        try:
            if target.is_file() and target.read_bytes() == delivery.document:
                log.info("file_drop_unchanged", path=str(target), action=delivery.action)
                return Receipt(
                    marketplace_id=receipt_id, message=f"already in the outbox: {target}"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_atomically(target, delivery.document)
        except OSError as exc:
            kind = PermanentError if exc.errno in PERMANENT_ERRNOS else TransientError
            raise kind(
                f"could not write {target}: {exc.strerror or exc}",
                listing_id=delivery.listing_id,
                marketplace=delivery.marketplace,
            ) from exc
        log.info(
            "file_dropped", path=str(target), action=delivery.action, bytes=len(delivery.document)
        )
        return Receipt(marketplace_id=receipt_id, message=f"written to {target}")


def _write_atomically(target: Path, data: bytes) -> None:
    """Temporary file in the target's folder, fsync, rename over, fsync the folder."""
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as temp:
            temp.write(data)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
