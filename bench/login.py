"""Failed logins: an unknown user against a wrong password, timed in the same run.

A failed login must not tell an unknown user from a wrong password by its
timing (R9; ``syndication/auth.py`` checks an unknown user against a dummy
hash for that). This benchmark makes the figure reproducible: it calls
:func:`syndication.auth.authenticate` — the function ``syndication status``
and the web view call — exactly as they do (a fresh ``session_scope`` per
attempt, the default argon2id hasher, the real throttle) against a temporary
SQLite store, and times N attempts of each kind:

- *wrong password*: an existing user whose argon2 password was set with
  :func:`syndication.passwords.set_password`, as ``tests/support/`` does;
- *unknown user*: a user name that is not stored, with the same password;
- *success*: the right password of an existing user (for scale).

The three kinds are interleaved — one of each per round, the order rotating
from round to round — so a change in machine load hits every kind alike,
rather than one batch running on a quieter machine than the other.

The throttle: attempts are counted per user name and, from the fourth of a
name on, an attempt inside the name's window is refused at once without a
password check. A refusal would not be the argon2 work being compared, so
every failed attempt uses a user name of its own: N stored users named
``agent-000`` … each get one wrong password, and N unknown names
``guest-000`` … (same length) one attempt each. Both kinds thus take the same
path through the throttle — the first attempt of a name inserted by the one
counting statement — and the throttle stays the real one, untouched; the
script checks that it never refused. The successes repeat one user, whose
count a success clears.

The ratio is median(unknown user) / median(wrong password): 1.0 means the two
cannot be told apart by the median. For scale the script also prints the
ratio of two halves of the wrong-password attempts (even against odd rounds),
i.e. how far two samples of the very same thing differ on this machine now.
It also prints the median of the per-round ratios (each unknown-user attempt
against the wrong-password attempt of its own round, run moments apart).
Log lines are filtered at ERROR (both failure kinds emit the same warning).

    python bench/login.py               # 40 attempts of each kind (~40 s)
    python bench/login.py --rounds 200
    python bench/login.py --quick       # 20 of each
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import factories  # noqa: E402
from _common import report  # noqa: E402
from sqlalchemy import Engine, func, select  # noqa: E402

from syndication.auth import authenticate  # noqa: E402
from syndication.errors import AuthenticationFailed, LoginThrottled  # noqa: E402
from syndication.logs import configure  # noqa: E402
from syndication.passwords import default_hasher, set_password  # noqa: E402
from syndication.store.db import make_engine, migrate, session_scope  # noqa: E402
from syndication.store.models import LoginThrottleRow  # noqa: E402

PASSWORD = "Vinter-2026!"
WRONG = "Sommar-2026!"
SUCCESS_USER = "staff-000"


def known(n: int) -> str:
    return f"agent-{n:03d}"


def unknown(n: int) -> str:
    return f"guest-{n:03d}"


@dataclass
class Refusals:
    """The throttle's refusals seen during the run (there must be none)."""

    retry_after: list[int] = field(default_factory=list)


def store(directory: Path, rounds: int) -> Engine:
    """A migrated SQLite store with ``rounds`` + 1 agents and one support user, added as
    ``tests/support/`` adds them, each with an argon2 password set as an administrator sets it."""
    engine = make_engine(f"sqlite:///{directory / 'store.db'}")
    migrate(engine)
    users = [SUCCESS_USER, *(known(n) for n in range(rounds + 1))]
    hasher = default_hasher()
    with session_scope(engine) as session:
        session.add_all(factories.rows(
            factories.office_record("OFF1", name="Mäklarhuset City", licence=("hemnet",)),
            *(factories.user_record(user, office_id="OFF1", name=f"Agent {user}")
              for user in users),
        ))
        session.flush()
        for user in users:
            set_password(session, user, PASSWORD, old_password=None, hasher=hasher)
    return engine


def attempt(engine: Engine, username: str, password: str,
            refusals: Refusals) -> tuple[float, bool]:
    """Seconds one login takes, as the CLI and the web view make it, and whether it succeeded."""
    started = time.perf_counter()
    try:
        with session_scope(engine) as session:
            authenticate(session, username, password)
        ok = True
    except LoginThrottled as exc:
        refusals.retry_after.append(exc.retry_after)
        ok = False
    except AuthenticationFailed:
        ok = False
    return time.perf_counter() - started, ok


def p90(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=10, method="inclusive")[8]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time failed logins of an unknown user against a wrong password "
        "(interleaved, same run) and successful ones; ratio = median unknown / median wrong "
        "password, 1.0 = indistinguishable. Every failed attempt uses a user name of its own, "
        "so the per-name throttle never refuses either side.")
    parser.add_argument("--rounds", type=int, default=40, metavar="N",
                        help="attempts of each kind (default 40)")
    parser.add_argument("--quick", action="store_true", help="20 attempts of each kind")
    args = parser.parse_args(argv)
    rounds = 20 if args.quick else args.rounds
    if rounds < 2:
        parser.error("--rounds must be at least 2")
    configure("ERROR")

    refusals = Refusals()
    with tempfile.TemporaryDirectory(prefix="bench-login-") as tmp:
        print(f"setting {rounds + 2} argon2 passwords …", file=sys.stderr, flush=True)
        engine = store(Path(tmp), rounds)
        # Warm-up, not timed: the dummy hash of an unknown user is made once per process.
        if attempt(engine, known(rounds), WRONG, refusals)[1] or \
                attempt(engine, unknown(rounds), WRONG, refusals)[1]:
            raise SystemExit("a failed login succeeded")
        attempt(engine, SUCCESS_USER, PASSWORD, refusals)

        kinds: dict[str, Callable[[int], tuple[float, bool]]] = {
            "wrong_password": lambda n: attempt(engine, known(n), WRONG, refusals),
            "unknown_user": lambda n: attempt(engine, unknown(n), WRONG, refusals),
            "success": lambda n: attempt(engine, SUCCESS_USER, PASSWORD, refusals),
        }
        order = list(kinds)
        times: dict[str, list[float]] = {kind: [] for kind in kinds}
        gc.collect()
        gc.disable()
        for n in range(rounds):
            for kind in order[n % 3:] + order[:n % 3]:
                seconds, ok = kinds[kind](n)
                if ok != (kind == "success"):
                    raise SystemExit(f"{kind} attempt {n}: login {'succeeded' if ok else 'failed'}")
                times[kind].append(seconds)
        gc.enable()
        with session_scope(engine) as session:
            throttled = session.scalar(select(func.count()).select_from(LoginThrottleRow))
        engine.dispose()
    if refusals.retry_after:
        raise SystemExit(f"the throttle refused {len(refusals.retry_after)} attempts; "
                         "the figures are unfair")
    if throttled != 2 * rounds + 2:
        raise SystemExit(f"{throttled} throttle rows, expected one per failed name")

    ms = {kind: [s * 1000 for s in values] for kind, values in times.items()}
    median = {kind: statistics.median(values) for kind, values in ms.items()}
    tail = {kind: p90(values) for kind, values in ms.items()}
    ratio = median["unknown_user"] / median["wrong_password"]
    noise = statistics.median(ms["wrong_password"][0::2]) / \
        statistics.median(ms["wrong_password"][1::2])
    paired = statistics.median(u / w for u, w in zip(ms["unknown_user"], ms["wrong_password"],
                                                      strict=True))
    print(f"{rounds} attempts of each kind, interleaved; argon2id "
          f"t={default_hasher().time_cost} m={default_hasher().memory_cost} KiB "
          f"p={default_hasher().parallelism}; no throttle refusals")
    for kind, label in (("wrong_password", "wrong password"), ("unknown_user", "unknown user"),
                        ("success", "success")):
        print(f"  {label:<15} median {median[kind]:7.1f} ms   p90 {tail[kind]:7.1f} ms")
    print(f"  ratio unknown user / wrong password (medians): {ratio:.3f}")
    print(f"  median of the per-round ratios: {paired:.3f}; for scale, wrong password "
          f"even / odd rounds: {noise:.3f}")
    report(
        "login",
        ratio=round(ratio, 3),
        ratio_meaning="median failed login of an unknown user / of a wrong password "
                      "(interleaved; 1.0 = indistinguishable)",
        value=round(median["unknown_user"], 1),
        unit="ms median, unknown user",
        floor=round(median["wrong_password"], 1),
        floor_unit="ms median, wrong password",
        rounds=rounds,
        p90_unknown_user_ms=round(tail["unknown_user"], 1),
        p90_wrong_password_ms=round(tail["wrong_password"], 1),
        median_success_ms=round(median["success"], 1),
        p90_success_ms=round(tail["success"], 1),
        paired_ratio=round(paired, 3),
        same_side_ratio=round(noise, 3),
        throttle_refusals=0,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
