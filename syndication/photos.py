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

import hashlib
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError
from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError

from adapters.photo_portal import ImageTooLarge, PhotoPortalClient, PortalAssignment, PortalImage
from syndication.errors import PermanentError, SyndicationError
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

ACCEPTED_FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("image/jpeg", ".jpg"),
    "PNG": ("image/png", ".png"),
}
"""Pillow format → (content type, file extension): the types every marketplace takes."""

STAGING = ".incoming"


@dataclass(frozen=True)
class ImageLimits:
    """What an image must satisfy to be attached."""

    max_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 40_000_000
    min_side: int = 100


class ImageRejected(PermanentError):
    """The file is not an image the marketplaces take; the message says why."""


@dataclass(frozen=True)
class VerifiedImage:
    format: str
    content_type: str
    extension: str
    width: int
    height: int
    size: int
    sha256: str


@dataclass(frozen=True)
class AssignmentResult:
    """What happened to one assignment: ``fetched`` (now at 2) or ``problem`` (still at 1)."""

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


def verify_image(path: Path, limits: ImageLimits) -> VerifiedImage:
    """Check that ``path`` is a whole JPEG or PNG within ``limits``; :class:`ImageRejected` if not.

    The header is read first (format, dimensions) so a decompression bomb is
    refused before any pixel is decoded; then the whole image is decoded, which
    catches truncated and corrupt files that a header check alone would pass.
    """
    size = path.stat().st_size
    if size == 0:
        raise ImageRejected("the file is empty")
    if size > limits.max_bytes:
        raise ImageRejected(f"the file is too large: {size} bytes, the limit is {limits.max_bytes}")
    kind = "image"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                kind = str(image.format)
                width, height = image.size
                if kind not in ACCEPTED_FORMATS:
                    raise ImageRejected(
                        f"the type {kind} is not taken by the marketplaces (only JPEG and PNG)"
                    )
                _check_dimensions(width, height, limits)
                image.verify()
            with Image.open(path) as image:
                image.load()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ImageRejected(f"the image has too many pixels ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageRejected("the file is not an image (neither JPEG nor PNG)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"the {kind} file is damaged or truncated ({exc})") from exc
    content_type, extension = ACCEPTED_FORMATS[kind]
    return VerifiedImage(kind, content_type, extension, width, height, size, _sha256(path))


def _check_dimensions(width: int, height: int, limits: ImageLimits) -> None:
    if width * height > limits.max_pixels:
        raise ImageRejected(
            f"the image has too many pixels: {width}x{height}, the limit is {limits.max_pixels}"
        )
    if min(width, height) < limits.min_side:
        raise ImageRejected(
            f"the image is too small: {width}x{height}, at least {limits.min_side} px a side"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
        except SyndicationError as exc:
            message = str(exc)
            log.warning("photo_assignment_problem", error=message)
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
                ListingImageRow.portal_image_id.is_not(None),  # type: ignore[union-attr]
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
        try:
            with path.open("w+b") as out:
                self.portal.download(image, out)
                out.flush()
                os.fsync(out.fileno())
            verified = verify_image(path, self.limits)
        except ImageTooLarge as exc:
            raise ImageRejected(
                f"image {image.id} ({image.title or 'untitled'}) rejected: the file is too large, "
                f"over the limit of {self.portal.max_image_bytes} bytes"
            ) from exc
        except ImageRejected as exc:
            raise ImageRejected(
                f"image {image.id} ({image.title or 'untitled'}) rejected: {exc}"
            ) from exc
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
                listing = session.scalars(
                    select(ListingRow).where(ListingRow.id == listing_id).with_for_update()
                ).first()
                if listing is None:
                    raise PermanentError(
                        f"listing {listing_id} was removed during the photo intake"
                    )
                rows = session.scalars(
                    select(ListingImageRow).where(ListingImageRow.listing_id == listing_id)
                )
                known = {row.portal_image_id for row in rows}
                top = session.scalar(
                    select(func.max(ListingImageRow.position)).where(
                        ListingImageRow.listing_id == listing_id
                    )
                )
                position = -1 if top is None else int(top)
                added = 0
                for image, verified, relative in stored:
                    if image.id in known:
                        continue
                    position += 1
                    added += 1
                    session.add(
                        ListingImageRow(
                            listing_id=listing_id,
                            url=self._url(relative),
                            position=position,
                            caption=image.title or None,
                            tag=image.tag or None,
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
                intake.images_fetched = (intake.images_fetched or 0) + added
                intake.last_fetched_at = now
                session.add(intake)
                session.execute(
                    update(PhotoProblemRow)
                    .where(
                        PhotoProblemRow.assignment_id == assignment_id,
                        PhotoProblemRow.resolved_at.is_(None),  # type: ignore[union-attr]
                    )
                    .values(resolved_at=now)
                )
        except IntegrityError:
            get_logger(assignment_id=assignment_id, listing_id=listing_id).info(
                "photo_assignment_attached_concurrently"
            )
            return 0
        return added

    def _record_problem(
        self, assignment_id: str, system_id: str, listing_id: str | None, message: str
    ) -> None:
        """Record a problem once: the same unresolved message is not repeated every round."""
        with session_scope(self.engine) as session:
            same = session.scalars(
                select(PhotoProblemRow.id).where(
                    PhotoProblemRow.assignment_id == assignment_id,
                    PhotoProblemRow.message == message,
                    PhotoProblemRow.resolved_at.is_(None),  # type: ignore[union-attr]
                )
            ).first()
            if same is None:
                session.add(
                    PhotoProblemRow(
                        assignment_id=assignment_id,
                        system_id=system_id[:64],
                        listing_id=listing_id,
                        message=message,
                        at=self.clock(),
                    )
                )


def unresolved_problems(engine: Engine) -> list[PhotoProblemRow]:
    """Every photo problem support has not yet seen resolved, oldest first."""
    with session_scope(engine) as session:
        query = select(PhotoProblemRow).where(PhotoProblemRow.resolved_at.is_(None))  # type: ignore[union-attr]
        return list(session.scalars(query.order_by(PhotoProblemRow.id)))  # type: ignore[arg-type]
