"""The tables of the mass-deletion guard (R15) and of the reconciliation reports (R13).

Kept beside :mod:`syndication.store.models`, which imports this module at its
end so that every table is in the one metadata the migrations are built from;
import the tables from here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Text
from sqlmodel import Field, SQLModel

from syndication.store.models import UTCDateTime, utcnow


class DeletionHoldRow(SQLModel, table=True):
    """Deletes held for a person's confirmation (R15), one row per office and cause.

    ``pairs`` lists every held delete as ``{"listing_id", "marketplace", "reason"}``;
    ``listings`` keeps each listing's state and selection from before the change
    that made it a delete (``{"listing_id", "state", "marketplaces"}``), so a cancel
    can put them back; ``counts`` is ``{marketplace: {"removing", "published"}}``.
    ``state`` is ``held``, then ``confirmed`` or ``cancelled`` by ``decided_by``.
    """

    __tablename__ = "deletion_hold"

    id: str = Field(primary_key=True, max_length=32)
    office_id: str = Field(index=True, max_length=64)
    state: str = Field(index=True, max_length=16)
    source: str = Field(max_length=16)
    cause: str = Field(sa_type=Text)
    pairs: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    listings: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    counts: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decided_by: str | None = Field(default=None, max_length=128)


class ReconcileResultRow(SQLModel, table=True):
    """One office and marketplace of one reconciliation run (R13): what was found.

    ``differences`` is the list of differences as :meth:`Difference.as_dict`
    writes them, each with whether the run repaired it; ``held_there`` is the
    marketplace's count (``None`` when it could not be asked: ``error`` says why).
    """

    __tablename__ = "reconcile_result"

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(index=True, max_length=64)
    trigger: str = Field(max_length=16)
    office_id: str = Field(index=True, max_length=64)
    marketplace: str = Field(max_length=32)
    held_there: int | None = Field(default=None)
    differences: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    repaired: int = Field(default=0)
    error: str | None = Field(default=None, sa_type=Text)
    at: datetime = Field(default_factory=utcnow, index=True, sa_type=UTCDateTime)
