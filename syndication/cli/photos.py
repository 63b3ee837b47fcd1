"""``syndication photos``: pull the finished photo assignments from the portal now (R11).

The same work as the scheduled ``pull_photos`` actor, in the foreground with a
progress bar; a line per problem, a summary at the end, and exit status 1 when
any assignment had a problem (2 for configuration errors). A pull migrates the
store first; ``--problems`` only reads: it opens the store read-only, never
migrates it and refuses one that is behind (exit status 2).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sqlalchemy import Engine
from tqdm import tqdm

from adapters.photo_portal import PhotoPortalClient
from syndication.errors import TransientError
from syndication.photos import PhotoIntake, PullReport, unresolved_problems
from syndication.settings import Settings
from syndication.store.schema import open_for_writing, open_read_only


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "photos",
        help="pull finished photo assignments from the photographers' portal",
        description=(
            "Fetch every assignment at portal status 1 ('Klar for overføring'), attach its new "
            "images to the listing with its system id and set it to 2. Configured by "
            "SYNDICATION_PHOTO_PORTAL_URL, SYNDICATION_PHOTO_PORTAL_TOKEN, SYNDICATION_MEDIA_DIR "
            "and SYNDICATION_MEDIA_BASE_URL."
        ),
    )
    parser.add_argument("--no-progress", action="store_true", help="do not draw a progress bar")
    parser.add_argument(
        "--problems",
        action="store_true",
        help="only list the unresolved problems of earlier pulls (the portal is not asked)",
    )
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace, settings: Settings) -> int:
    if args.problems:
        engine = open_read_only(settings.database_url)
        try:
            return list_problems(engine)
        finally:
            engine.dispose()
    engine = open_for_writing(settings.database_url, migrate_store=True)
    report = PullReport()
    try:
        with PhotoPortalClient.from_settings(settings) as portal:
            intake = PhotoIntake.from_settings(engine, portal, settings)
            try:
                ready = intake.ready()
            except TransientError as exc:
                print(f"error: the photo portal cannot be reached: {exc}", file=sys.stderr)
                return 1
            bar = tqdm(ready, desc="assignments", unit="assignment", disable=args.no_progress)
            for assignment in bar:
                result = intake.pull_one(assignment)
                report.results.append(result)
                bar.set_postfix(images=report.images_added, problems=len(report.problems))
                if result.outcome == "problem":
                    tqdm.write(
                        f"problem: assignment {result.assignment_id} "
                        f"(system id {result.system_id}): {result.message}",
                        file=sys.stderr,
                    )
    finally:
        engine.dispose()
    print(summary(report))
    return 0 if report.ok else 1


def list_problems(engine: Engine) -> int:
    problems = unresolved_problems(engine)
    for problem in problems:
        print(
            f"{problem.at:%Y-%m-%d %H:%M} UTC  assignment {problem.assignment_id}  "
            f"system id {problem.system_id or '-'}  listing {problem.listing_id or '-'}: "
            f"{problem.message}"
        )
    print(f"{len(problems)} unresolved photo problem(s)")
    return 0


def summary(report: PullReport) -> str:
    outcomes = [result.outcome for result in report.results]
    text = (
        f"{len(outcomes)} assignment(s) ready: {outcomes.count('fetched')} fetched "
        f"with {report.images_added} new image(s), {outcomes.count('problem')} with a problem"
    )
    gone = outcomes.count("gone")
    return text + (f", {gone} deleted in the portal meanwhile" if gone else "")
