"""A loopback stand-in of the photographers' portal (seed 001), for tests and demos.

It keeps the portal's rules from the guide:

* an assignment ("oppdrag") names the listing's system id and has a
  transfer status: 0 being edited, 1 "Klar for overføring" (ready for
  transfer), 2 "Meglersystemet har hentet bildene" (the broker system has
  fetched the images);
* at status 0 it is freely editable: upload and delete images, change an
  image's title, tag or order, rename the assignment;
* at status 1 it cannot be changed, only deleted;
* at status 2 it cannot be deleted; more images can be uploaded and the
  assignment set to 1 again, and only those are fetched next time;
* images are deleted 30 days after their transfer while the assignment and
  its history stay.

Photographers' actions are the Python methods of :class:`PortalStandIn`
(:meth:`create_assignment`, :meth:`upload_image`, …); the broker system's side
is the HTTP API documented in the README ("Photo intake"), served by a
``ThreadingHTTPServer`` on 127.0.0.1. Fault controls make it fail in the middle
of a download, answer with a 5xx or answer slowly. The clock is injected.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

STATUS_EDITING, STATUS_READY, STATUS_FETCHED = 0, 1, 2
STATUS_TEXT = {
    STATUS_EDITING: "Under arbeid",
    STATUS_READY: "Klar for overføring",
    STATUS_FETCHED: "Meglersystemet har hentet bildene",
}
IMAGE_RETENTION = timedelta(days=30)


class PortalRuleError(Exception):
    """An action the portal's rules do not allow in the assignment's current status."""


@dataclass
class StoredImage:
    id: str
    title: str
    tag: str
    order: int
    content: bytes
    content_type: str
    uploaded_at: datetime
    transferred_at: datetime | None = None


@dataclass
class Assignment:
    id: str
    system_id: str
    name: str
    status: int = STATUS_EDITING
    images: list[StoredImage] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    deleted: bool = False


@dataclass
class _Faults:
    cut_downloads: int = 0
    cut_after_bytes: int = 0
    cut_image_id: str | None = None
    errors: int = 0
    error_status: int = 503
    error_path: str | None = None
    delay: float = 0.0
    no_length: bool = False


class PortalStandIn:
    """The portal's state and rules, plus an HTTP server for the broker system's API.

    ``token`` is the bearer token the API demands; ``clock`` returns the
    current UTC time (tests move it to see images expire).
    """

    def __init__(
        self, token: str = "standin-token", clock: Callable[[], datetime] | None = None
    ) -> None:
        self.token = token
        self.clock = clock or (lambda: datetime.now(UTC))
        self._assignments: dict[str, Assignment] = {}
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._faults = _Faults()
        self.requests: Counter[str] = Counter()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- photographers' side (Python API) -----------------------------------------

    def create_assignment(self, system_id: str, name: str = "") -> str:
        """Create an assignment for the listing with ``system_id``; returns its id."""
        with self._lock:
            assignment = Assignment(
                id=f"A{next(self._ids)}", system_id=system_id, name=name or system_id
            )
            self._assignments[assignment.id] = assignment
            self._event(assignment, "created", f"system id {system_id}")
            return assignment.id

    def upload_image(
        self,
        assignment_id: str,
        content: bytes,
        *,
        title: str = "",
        tag: str = "",
        order: int | None = None,
        content_type: str = "image/jpeg",
    ) -> str:
        """Upload an image ("Nytt bilde"); allowed at status 0 and 2. Returns the image id."""
        with self._lock:
            assignment = self._editable(assignment_id, "upload images to")
            image = StoredImage(
                id=f"I{next(self._ids)}",
                title=title,
                tag=tag,
                order=order if order is not None else len(assignment.images) + 1,
                content=content,
                content_type=content_type,
                uploaded_at=self.clock(),
            )
            assignment.images.append(image)
            self._event(assignment, "image uploaded", image.id)
            return image.id

    def edit_image(
        self,
        assignment_id: str,
        image_id: str,
        *,
        title: str | None = None,
        tag: str | None = None,
        order: int | None = None,
    ) -> None:
        """Change an image's title, tag or order ("Endre"); not at status 1."""
        with self._lock:
            image = self._image(self._editable(assignment_id, "edit"), image_id)
            image.title = image.title if title is None else title
            image.tag = image.tag if tag is None else tag
            image.order = image.order if order is None else order

    def delete_image(self, assignment_id: str, image_id: str) -> None:
        """Delete one image ("Slett"); not at status 1, where the assignment is frozen."""
        with self._lock:
            assignment = self._editable(assignment_id, "delete images of")
            assignment.images.remove(self._image(assignment, image_id))
            self._event(assignment, "image deleted", image_id)

    def rename(self, assignment_id: str, name: str) -> None:
        """Change the assignment's name; only while it is being edited (status 0)."""
        with self._lock:
            assignment = self._get(assignment_id)
            if assignment.status != STATUS_EDITING:
                raise PortalRuleError(f"assignment {assignment_id} can only be renamed at status 0")
            assignment.name = name

    def set_status(self, assignment_id: str, status: int) -> None:
        """The photographer's status change: 0 → 1, or 2 → 1 for more images."""
        with self._lock:
            assignment = self._get(assignment_id)
            if status != STATUS_READY or assignment.status == STATUS_READY:
                raise PortalRuleError(
                    f"assignment {assignment_id} at status {assignment.status}: "
                    f"a photographer can only set status 1 from 0 or 2"
                )
            assignment.status = STATUS_READY
            self._event(assignment, "status", "1 " + STATUS_TEXT[STATUS_READY])

    def delete_assignment(self, assignment_id: str) -> None:
        """Delete an assignment; never after the broker system fetched it (status 2)."""
        with self._lock:
            assignment = self._get(assignment_id)
            if assignment.status == STATUS_FETCHED:
                raise PortalRuleError(
                    f"assignment {assignment_id} was transferred and cannot be deleted"
                )
            assignment.deleted = True
            assignment.images.clear()
            self._event(assignment, "deleted", "")

    def assignment(self, assignment_id: str) -> Assignment:
        """The assignment as it stands now (after any image expiry)."""
        with self._lock:
            return self._get(assignment_id)

    # ---- broker system's side ------------------------------------------------------

    def ready(self) -> list[Assignment]:
        with self._lock:
            self._expire()
            return [
                a for a in self._assignments.values() if not a.deleted and a.status == STATUS_READY
            ]

    def mark_fetched(self, assignment_id: str) -> Assignment:
        """Status 1 → 2; the images present now start their 30 days."""
        with self._lock:
            assignment = self._get(assignment_id)
            if assignment.status not in (STATUS_READY, STATUS_FETCHED):
                raise PortalRuleError(f"assignment {assignment_id} is not ready for transfer")
            now = self.clock()
            for image in assignment.images:
                image.transferred_at = image.transferred_at or now
            if assignment.status == STATUS_READY:
                assignment.status = STATUS_FETCHED
                self._event(assignment, "status", "2 " + STATUS_TEXT[STATUS_FETCHED])
            return assignment

    def find_image(self, image_id: str) -> StoredImage:
        with self._lock:
            self._expire()
            for assignment in self._assignments.values():
                for image in assignment.images:
                    if image.id == image_id:
                        return image
            raise KeyError(image_id)

    # ---- fault controls ------------------------------------------------------------

    def cut_downloads(self, after_bytes: int, times: int = 1, image_id: str | None = None) -> None:
        """The next ``times`` downloads send ``after_bytes`` bytes, then close the connection."""
        with self._lock:
            self._faults.cut_downloads, self._faults.cut_after_bytes = times, after_bytes
            self._faults.cut_image_id = image_id

    def fail_requests(
        self, times: int = 1, status: int = 503, path_contains: str | None = None
    ) -> None:
        """The next ``times`` requests (whose path contains ``path_contains``) answer ``status``."""
        with self._lock:
            self._faults.errors, self._faults.error_status = times, status
            self._faults.error_path = path_contains

    def omit_content_length(self, on: bool = True) -> None:
        """Send image bodies without a Content-Length, ended by closing the connection."""
        self._faults.no_length = on

    def slow(self, seconds: float) -> None:
        """Every answer waits ``seconds`` first (0 turns it off)."""
        self._faults.delay = seconds

    def clear_faults(self) -> None:
        with self._lock:
            self._faults = _Faults()

    # ---- server --------------------------------------------------------------------

    def start(self) -> PortalStandIn:
        """Serve the API on a free port of 127.0.0.1 in a background thread."""
        handler = type("Handler", (_Handler,), {"portal": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="portal-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the stand-in first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> PortalStandIn:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # ---- internals -----------------------------------------------------------------

    def _get(self, assignment_id: str) -> Assignment:
        self._expire()
        assignment = self._assignments.get(assignment_id)
        if assignment is None or assignment.deleted:
            raise KeyError(assignment_id)
        return assignment

    def _editable(self, assignment_id: str, what: str) -> Assignment:
        assignment = self._get(assignment_id)
        if assignment.status == STATUS_READY:
            raise PortalRuleError(
                f"cannot {what} assignment {assignment_id}: it is ready for transfer (status 1) "
                "and can only be deleted"
            )
        return assignment

    @staticmethod
    def _image(assignment: Assignment, image_id: str) -> StoredImage:
        for image in assignment.images:
            if image.id == image_id:
                return image
        raise KeyError(image_id)

    def _event(self, assignment: Assignment, event: str, detail: str) -> None:
        assignment.history.append(
            {"at": self.clock().isoformat(), "event": event, "detail": detail}
        )

    def _expire(self) -> None:
        """Delete images 30 days after their transfer; the assignment and history stay."""
        now = self.clock()
        for assignment in self._assignments.values():
            for image in list(assignment.images):
                if (
                    image.transferred_at is not None
                    and now - image.transferred_at >= IMAGE_RETENTION
                ):
                    assignment.images.remove(image)
                    self._event(assignment, "image deleted automatically", image.id)

    def _take_error(self, path: str) -> int | None:
        with self._lock:
            faults = self._faults
            if faults.errors > 0 and (faults.error_path is None or faults.error_path in path):
                faults.errors -= 1
                return faults.error_status
            return None

    def _take_cut(self, image_id: str) -> int | None:
        with self._lock:
            faults = self._faults
            if faults.cut_downloads > 0 and faults.cut_image_id in (None, image_id):
                faults.cut_downloads -= 1
                return faults.cut_after_bytes
            return None


def assignment_json(assignment: Assignment, base_url: str) -> dict[str, Any]:
    """The API's view of an assignment, images in the portal's order."""
    return {
        "id": assignment.id,
        "system_id": assignment.system_id,
        "name": assignment.name,
        "status": assignment.status,
        "status_text": STATUS_TEXT[assignment.status],
        "images": [
            {
                "id": image.id,
                "title": image.title,
                "tag": image.tag,
                "order": image.order,
                "content_type": image.content_type,
                "size": len(image.content),
                "sha256": hashlib.sha256(image.content).hexdigest(),
                "transferred_at": image.transferred_at.isoformat()
                if image.transferred_at
                else None,
                "content_url": f"{base_url}/api/images/{image.id}/content",
            }
            for image in sorted(assignment.images, key=lambda i: (i.order, i.id))
        ],
        "history": list(assignment.history),
    }


_ASSIGNMENT = re.compile(r"^/api/assignments/([^/]+)$")
_STATUS = re.compile(r"^/api/assignments/([^/]+)/status$")
_CONTENT = re.compile(r"^/api/images/([^/]+)/content$")


class _Handler(BaseHTTPRequestHandler):
    portal: PortalStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: the stand-in does not write access logs to stderr."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def _dispatch(self, method: str) -> None:
        portal = self.portal
        path = urlsplit(self.path).path
        portal.requests[f"{method} {path}"] += 1
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if portal._faults.delay:
            time.sleep(portal._faults.delay)
        if self.headers.get("Authorization") != f"Bearer {portal.token}":
            return self._json(401, {"error": "missing or wrong bearer token"})
        status = portal._take_error(path)
        if status is not None:
            retry_after = {"Retry-After": "7"} if status == 429 else {}
            return self._json(status, {"error": "injected fault"}, retry_after)
        try:
            if method == "GET" and path == "/api/assignments":
                return self._list()
            if method == "GET" and (m := _ASSIGNMENT.match(path)):
                return self._json(200, assignment_json(portal.assignment(m[1]), portal.url))
            if method == "GET" and (m := _CONTENT.match(path)):
                return self._content(m[1])
            if method == "PUT" and (m := _STATUS.match(path)):
                return self._set_status(m[1], body)
        except KeyError as exc:
            return self._json(404, {"error": f"not found: {exc.args[0]}"})
        except PortalRuleError as exc:
            return self._json(409, {"error": str(exc)})
        return self._json(404, {"error": f"no such endpoint: {method} {path}"})

    def _list(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        if query.get("status", ["1"]) != ["1"]:
            return self._json(400, {"error": "only status=1 can be listed"})
        items = [
            {"id": a.id, "system_id": a.system_id, "name": a.name, "status": a.status}
            for a in self.portal.ready()
        ]
        return self._json(200, {"assignments": items})

    def _set_status(self, assignment_id: str, body: bytes) -> None:
        try:
            status = json.loads(body)["status"]
        except (ValueError, KeyError, TypeError):
            return self._json(400, {"error": 'body must be {"status": 2}'})
        if status != STATUS_FETCHED:
            return self._json(400, {"error": "the broker system can only set status 2"})
        assignment = self.portal.mark_fetched(assignment_id)
        return self._json(200, {"id": assignment.id, "status": assignment.status})

    def _content(self, image_id: str) -> None:
        image = self.portal.find_image(image_id)
        cut = self.portal._take_cut(image_id)
        self.send_response(200)
        self.send_header("Content-Type", image.content_type)
        if self.portal._faults.no_length:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(image.content)))
        self.end_headers()
        if cut is None:
            self.wfile.write(image.content)
            return
        self.wfile.write(image.content[:cut])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main(argv: list[str] | None = None) -> None:
    """``python -m adapters.portal_standin [--system-id ID …]``: serve until Ctrl-C.

    Each ``--system-id`` gets an assignment at status 1 with ``--images``
    generated JPEGs, ready for ``syndication photos``.
    """
    import argparse
    import io

    from PIL import Image

    parser = argparse.ArgumentParser(description="Loopback stand-in of the photo portal.")
    parser.add_argument(
        "--system-id", action="append", default=[], help="a ready assignment for it"
    )
    parser.add_argument("--images", type=int, default=3, help="images per assignment")
    parser.add_argument("--token", default="standin-token")
    args = parser.parse_args(argv)
    portal = PortalStandIn(token=args.token).start()
    for system_id in args.system_id:
        assignment = portal.create_assignment(system_id, f"Fotografering {system_id}")
        for n in range(1, args.images + 1):
            buffer = io.BytesIO()
            Image.new("RGB", (1024, 768), (40 * n % 256, 120, 200)).save(buffer, "JPEG")
            portal.upload_image(assignment, buffer.getvalue(), title=f"Bild {n}", order=n)
        portal.set_status(assignment, STATUS_READY)
    print(f"SYNDICATION_PHOTO_PORTAL_URL={portal.url}")
    print(f"SYNDICATION_PHOTO_PORTAL_TOKEN={args.token}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        portal.stop()


if __name__ == "__main__":
    main()
