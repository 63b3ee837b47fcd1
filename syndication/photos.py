"""The photo module: finished photo assignments from the portal into the listings (R11).

For every assignment at portal status 1 it finds the listing whose system id
the assignment names, downloads the images not fetched before, verifies each
(really a JPEG or PNG, within size and pixel limits), stores them in the media
folder under content-addressed names, attaches all of them to the listing in
ONE transaction, in the portal's order with title (caption) and tag, and only
then sets the assignment to status 2.

An assignment is all or nothing: a failed download, a rejected file or an
unknown system id attaches nothing, leaves the assignment at 1 and records a
:class:`~syndication.store.models.PhotoProblemRow` for support; the problems of
an assignment are resolved when it later succeeds. Files are staged in a
hidden folder and removed on failure; a stored file no row points to (a
failure after storing) is harmless, being named by its content, and reused.
The next marketplace transfer carries the new images because the listing's
feed documents change.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import col, select

from adapters.photo_portal import (
    ImageTooLarge,
    NotFound,
    PhotoPortalClient,
    PortalAssignment,
    PortalImage,
)
from syndication.errors import PermanentError, SyndicationError
from syndication.image_checks import ImageLimits, ImageRejected, VerifiedImage, verify_image
from syndication.logs import get_logger
from syndication.settings import Settings
from syndication.store.db import session_scope
from syndication.store.models import (
    ListingImageRow,
    ListingRow,
    PhotoIntakeRow,
    PhotoProblemRow,
    utcnow,
)

STAGING = ".incoming"
TEXT_LIMIT = 500


@dataclass(frozen=True)
class AssignmentResult:
    """What happened to one assignment: ``fetched`` (now at 2), ``problem`` (still at 1)
    or ``gone`` (deleted in the portal while being pulled)."""

    assignment_id: str
    system_id: str
    outcome: str
    listing_id: str | None = None
    added: int = 0
    message: str | None = None


@dataclass
class PullReport:
    results: list[AssignmentResult] = field(default_factory=list)

    @property
    def problems(self) -> list[AssignmentResult]:
        return [r for r in self.results if r.outcome == "problem"]

    @property
    def images_added(self) -> int:
        return sum(r.added for r in self.results)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class _Staged:
    image: PortalImage
    verified: VerifiedImage
    path: Path


class PhotoIntake:
    """Pulls ready assignments from ``portal`` into the store behind ``engine``.

    Images go to ``media_dir``; their address is ``media_base_url`` + the
    stored name, or a ``file://`` URI when no base URL is configured.
    """

    def __init__(
        self,
        engine: Engine,
        portal: PhotoPortalClient,
        media_dir: Path,
        *,
        media_base_url: str | None = None,
        limits: ImageLimits | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.portal = portal
        self.media_dir = Path(media_dir)
        self.media_base_url = media_base_url
        self.limits = limits or ImageLimits(max_bytes=portal.max_image_bytes)
        self.clock = clock

    @classmethod
    def from_settings(
        cls, engine: Engine, portal: PhotoPortalClient, settings: Settings, **kwargs: Any
    ) -> PhotoIntake:
        """The intake with the configured media folder and base URL."""
        return cls(
            engine, portal, settings.media_dir, media_base_url=settings.media_base_url, **kwargs
        )

    def ready(self) -> list[PortalAssignment]:
        """The assignments at status 1 (raises TransientError when the portal is down)."""
        return self.portal.ready_assignments()

    def pull(self, on_result: Callable[[AssignmentResult], None] | None = None) -> PullReport:
        """Pull every ready assignment; one assignment's failure never stops the others."""
        report = PullReport()
        for assignment in self.ready():
            result = self.pull_one(assignment)
            report.results.append(result)
            if on_result is not None:
                on_result(result)
        return report

    def pull_one(self, summary: PortalAssignment) -> AssignmentResult:
        """Fetch one assignment's new images, attach them, then set it to 2."""
        system_id = summary.system_id.strip()
        log = get_logger(assignment_id=summary.id, system_id=system_id)
        listing_id: str | None = None
        try:
            _check_system_id(system_id)
            listing_id = self._find_listing(system_id)
            log = log.bind(listing_id=listing_id)
            assignment = self.portal.assignment(summary.id)
            known = self._known_image_ids(listing_id)
            new = [image for image in assignment.images if image.id not in known]
            with self._staging() as stage:
                staged = [self._download(image, stage) for image in new]
                stored = [self._store(item) for item in staged]
            added = self._attach(summary.id, system_id, listing_id, stored)
            self.portal.set_fetched(summary.id)
        except NotFound:
            log.info("photo_assignment_gone")
            return AssignmentResult(summary.id, system_id, "gone", listing_id)
        except (SyndicationError, SQLAlchemyError) as exc:
            message = (
                str(exc) if isinstance(exc, SyndicationError) else f"store error: {exc!s:.300}"
            )
            log.warning("photo_assignment_problem", error=message)
            with suppress(SQLAlchemyError):
                self._record_problem(summary.id, system_id, listing_id, message)
            return AssignmentResult(summary.id, system_id, "problem", listing_id, 0, message)
        log.info("photo_assignment_fetched", images_added=added, images_known=len(known))
        return AssignmentResult(summary.id, system_id, "fetched", listing_id, added)

    # ---- steps ---------------------------------------------------------------------

    def _find_listing(self, system_id: str) -> str:
        with session_scope(self.engine) as session:
            ids = list(
                session.scalars(select(ListingRow.id).where(ListingRow.system_id == system_id))
            )
        if not ids:
            raise PermanentError(
                f"no listing has system id {system_id!r}; check the assignment's system id"
            )
        if len(ids) > 1:
            raise PermanentError(
                f"system id {system_id!r} names several listings: {', '.join(sorted(ids))}"
            )
        return ids[0]

    def _known_image_ids(self, listing_id: str) -> set[str]:
        with session_scope(self.engine) as session:
            query = select(ListingImageRow.portal_image_id).where(
                ListingImageRow.listing_id == listing_id,
                col(ListingImageRow.portal_image_id).is_not(None),
            )
            return {str(value) for value in session.scalars(query)}

    @contextmanager
    def _staging(self) -> Iterator[Path]:
        """A private folder beside the media for downloads; removed with whatever is left in it."""
        root = self.media_dir / STAGING
        root.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(dir=root))
        try:
            yield stage
        finally:
            for leftover in stage.iterdir():
                leftover.unlink(missing_ok=True)
            with suppress(OSError):
                stage.rmdir()

    def _download(self, image: PortalImage, stage: Path) -> _Staged:
        path = stage / f"{len(list(stage.iterdir()))}.part"
        name = f"image {image.id} ({_clean(image.title) or 'untitled'})"
        try:
            with path.open("w+b") as out:
                self.portal.download(image, out)
                out.flush()
                os.fsync(out.fileno())
            verified = verify_image(path, self.limits)
        except ImageTooLarge as exc:
            raise ImageRejected(
                f"{name} rejected: the file is too large, "
                f"over the limit of {self.portal.max_image_bytes} bytes"
            ) from exc
        except ImageRejected as exc:
            raise ImageRejected(f"{name} rejected: {exc}") from exc
        return _Staged(image, verified, path)

    def _store(self, item: _Staged) -> tuple[PortalImage, VerifiedImage, str]:
        """Move a verified file to its content-addressed name, atomically; return its path."""
        relative = f"{item.verified.sha256[:2]}/{item.verified.sha256}{item.verified.extension}"
        target = self.media_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(item.path, target)
        return item.image, item.verified, relative

    def _url(self, relative: str) -> str:
        if self.media_base_url:
            return f"{self.media_base_url.rstrip('/')}/{relative}"
        return (self.media_dir / relative).resolve().as_uri()

    def _attach(
        self,
        assignment_id: str,
        system_id: str,
        listing_id: str,
        stored: list[tuple[PortalImage, VerifiedImage, str]],
    ) -> int:
        """Add the images after the listing's others, record the intake, resolve old problems.

        One transaction; the listing row is locked (PostgreSQL) and the known
        images re-read inside it, so two concurrent runs cannot attach twice.
        """
        now = self.clock()
        try:
            with session_scope(self.engine) as session:
                locked = select(ListingRow.id).where(ListingRow.id == listing_id).with_for_update()
                if session.scalars(locked).first() is None:
                    raise PermanentError(
                        f"listing {listing_id} was removed during the photo intake"
                    )
                mine = col(ListingImageRow.listing_id) == listing_id
                known = set(session.scalars(select(ListingImageRow.portal_image_id).where(mine)))
                top = session.scalar(select(func.max(col(ListingImageRow.position))).where(mine))
                first = 0 if top is None else int(top) + 1
                fresh = [item for item in stored if item[0].id not in known]
                for position, (image, verified, relative) in enumerate(fresh, start=first):
                    session.add(
                        ListingImageRow(
                            listing_id=listing_id,
                            url=self._url(relative),
                            position=position,
                            caption=_clean(image.title),
                            tag=_clean(image.tag),
                            source="portal",
                            portal_image_id=image.id,
                            media_path=relative,
                            content_type=verified.content_type,
                            sha256=verified.sha256,
                        )
                    )
                intake = session.get(PhotoIntakeRow, assignment_id) or PhotoIntakeRow(
                    assignment_id=assignment_id, system_id=system_id
                )
                intake.system_id, intake.listing_id = system_id, listing_id
                intake.images_fetched = (intake.images_fetched or 0) + len(fresh)
                intake.last_fetched_at = now
                session.add(intake)
                session.execute(
                    update(PhotoProblemRow)
                    .where(
                        col(PhotoProblemRow.assignment_id) == assignment_id,
                        col(PhotoProblemRow.resolved_at).is_(None),
                    )
                    .values(resolved_at=now)
                )
        except IntegrityError:
            get_logger(assignment_id=assignment_id, listing_id=listing_id).info(
                "photo_assignment_attached_concurrently"
            )
            return 0
        return len(fresh)

    def _record_problem(
        self, assignment_id: str, system_id: str, listing_id: str | None, message: str
    ) -> None:
        """Record a problem once: the same unresolved message is not repeated every round."""
        with session_scope(self.engine) as session:
            same = session.scalars(
                select(PhotoProblemRow.id).where(
                    col(PhotoProblemRow.assignment_id) == assignment_id,
                    col(PhotoProblemRow.message) == message,
                    col(PhotoProblemRow.resolved_at).is_(None),
                )
            ).first()
            if same is None:
                session.add(
                    PhotoProblemRow(
                        assignment_id=assignment_id,
                        system_id=(_clean(system_id) or "")[:64] or None,
                        listing_id=listing_id,
                        message=message,
                        at=self.clock(),
                    )
                )


def _check_system_id(system_id: str) -> None:
    """A system id is what the broker typed into the portal: short, printable, not empty."""
    if not system_id or len(system_id) > 64 or not system_id.isprintable():
        raise PermanentError(
            f"the assignment's system id {system_id[:80]!r} is not a valid system id"
        )


def _clean(text: str) -> str | None:
    """A portal title or tag as stored: printable characters only, at most TEXT_LIMIT."""
    cleaned = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return cleaned[:TEXT_LIMIT] or None


def unresolved_problems(engine: Engine) -> list[PhotoProblemRow]:
    """Every photo problem support has not yet seen resolved, oldest first."""
    with session_scope(engine) as session:
        query = select(PhotoProblemRow).where(col(PhotoProblemRow.resolved_at).is_(None))
        return list(session.scalars(query.order_by(col(PhotoProblemRow.id))))
