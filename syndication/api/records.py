"""``PUT /records``: the desktop pushes its input document (``schemas/records.schema.json``).

The twin of ``syndication ingest``: the same reading (:func:`~syndication.ingest.ingest_document`),
the same messages, the same rule that a rejected record leaves its stored copy
as it was. Outcomes map as the CLI's exit statuses do: every record taken or
some rejected (exit 0 or 1) is 200 with one outcome per record; a document that
cannot be used at all (exit 2: not JSON, not UTF-8, nested too deeply, wrong
shape) is 422 about the ``document``. On top of ingest, each record is checked
against the principal's tenancy (:mod:`syndication.api.write_scope`); support,
who writes nothing, is refused with 403 before the body is read.

The body is read here, not by the framework, with its own cap
(``SYNDICATION_API_MAX_BODY_BYTES``, default 32 MiB; the rest of the service
caps bodies far lower): a ``Content-Length`` over it, or a stream that goes
over it, is 413 before anything is parsed.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from syndication.access import SUPPORT, Principal, UserPrincipal
from syndication.api.auth import PrincipalDependency
from syndication.api.errors import ApiError, ApiRoute, invalid, responses
from syndication.api.models import Problem, RecordOutcome, RecordsResult
from syndication.api.write_scope import WriteScope
from syndication.errors import ConfigurationError
from syndication.holds import Guard
from syndication.ingest import IngestReport, RecordError, ingest_document
from syndication.input_validation import KINDS
from syndication.service import ServiceContext

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_BODY_VARIABLE = "SYNDICATION_API_MAX_BODY_BYTES"

REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "description": "The input document of schemas/records.schema.json: offices, users and "
                   "listings, each validated record by record.",
    "content": {"application/json": {"schema": {
        "type": "object",
        "properties": {plural: {"type": "array", "items": {"type": "object"}}
                       for plural, _ in KINDS},
    }}},
}


def max_body_bytes(context: ServiceContext) -> int:
    """The cap of a pushed document, from ``SYNDICATION_API_MAX_BODY_BYTES`` (bytes)."""
    value = context.settings.environ.get(MAX_BODY_VARIABLE)
    if value is None or value == "":
        return DEFAULT_MAX_BODY_BYTES
    try:
        cap = int(value)
    except ValueError:
        cap = 0
    if cap <= 0:
        raise ConfigurationError(f"{MAX_BODY_VARIABLE} must be a positive number of bytes, "
                                 f"not {value!r}")
    return cap


async def read_capped(request: Request, cap: int) -> bytes:
    """The request body, or 413 as soon as it is known to be over ``cap`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise too_large(cap)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise too_large(cap)
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(cap: int) -> ApiError:
    return ApiError(413, f"is larger than {cap} bytes ({MAX_BODY_VARIABLE})", record="document")


def outcomes(report: IngestReport, taken: dict[str, list[str]]) -> list[RecordOutcome]:
    """One outcome per record: the taken ones by id, then each rejected one with its
    problems (the first as ``field`` and ``message``), in the order ingest found them."""
    found: list[RecordOutcome] = []
    for kind, ids in taken.items():
        found.extend(RecordOutcome(record=f"{kind} {rid!r}", kind=kind, id=rid,  # type: ignore[arg-type]
                                   outcome="accepted") for rid in ids)
    rejected: dict[str, RecordOutcome] = {}
    for error in report.errors:
        name = error.record or "document"
        entry = rejected.get(name)
        if entry is None:
            kind, _, rest = name.partition(" ")
            rid = rest[1:-1] if rest.startswith("'") and rest.endswith("'") else None
            entry = rejected[name] = RecordOutcome(
                record=name, kind=kind if kind in ("office", "user", "listing") else "document",  # type: ignore[arg-type]
                id=rid, outcome="rejected", field=error.field, message=error.message,
            )
        entry.problems.append(Problem(field=error.field, message=error.message))
    return [*found, *rejected.values()]


def records_router(context: ServiceContext, principal: PrincipalDependency) -> APIRouter:
    router = APIRouter(route_class=ApiRoute, tags=["records"])
    cap = max_body_bytes(context)

    def store(who: Principal, raw: bytes) -> RecordsResult:
        with WriteScope(context.engine, who) as scope:
            try:
                report = ingest_document(context.engine, raw, now=context.clock(),
                                         max_bytes=cap, refuse=scope,
                                         guard=Guard.from_settings(context.settings))
            except RecordError as exc:
                raise invalid(exc) from None
        taken = {"office": report.offices, "user": report.users, "listing": report.listings}
        return RecordsResult(accepted=report.accepted, rejected=report.rejected,
                             created_listings=report.created_listings,
                             records=outcomes(report, taken))

    @router.put("/records", response_model=RecordsResult, openapi_extra={
                "requestBody": REQUEST_BODY}, responses=responses(401, 403, 413, 422),
                summary="Push offices, users and listings")
    async def put_records(
        request: Request, who: Annotated[Principal, Depends(principal)]
    ) -> RecordsResult:
        """Upsert the valid records of the document the principal may write; every other
        record is rejected with its record, field and message."""
        if isinstance(who, UserPrincipal) and who.role == SUPPORT:
            raise ApiError(403, "support reads every office and writes none")
        raw = await read_capped(request, cap)
        return await run_in_threadpool(store, who, raw)

    return router
