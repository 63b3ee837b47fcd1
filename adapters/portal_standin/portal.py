"""The portal's state and rules (seed 001), its fault controls and its server's lifecycle.

See the package docstring for the rules; :mod:`.server` answers the HTTP API.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from typing import Any

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
        from adapters.portal_standin.server import make_server

        self._server = make_server(self)
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
