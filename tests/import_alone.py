"""Import each named module first and alone, in a process of its own; print the results.

Run as ``python tests/import_alone.py MODULE…``. The interpreter loads the project's
third-party libraries once (:data:`PRELOAD`: ``import X`` of each, nothing of the
project's), then forks one child per module; the child imports that module and exits.
A child starts with no module of ``syndication``, ``feeds`` or ``adapters`` loaded and
none of their side effects (the dramatiq broker, metrics registries, settings), as a
fresh interpreter would, so an import cycle or an import-order fault among the
project's modules shows exactly as it does in ``python -c "import MODULE"``; what the
fork saves is each child's second or two of loading SQLAlchemy, FastAPI and the rest.
Each result is one JSON line: ``{"module", "code", "stderr"}``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
import traceback

PRELOAD = (
    "alembic", "apscheduler", "argon2", "babel", "dramatiq", "fastapi", "jinja2",
    "jsonschema", "lxml", "PIL", "prometheus_client", "psycopg", "pydantic", "redis",
    "requests", "sqlalchemy", "sqlmodel", "structlog", "tenacity", "tqdm", "uvicorn",
)
PROJECT = ("syndication", "feeds", "adapters", "worker")
PARALLEL = 4


def _child(module: str, stderr_fd: int) -> None:
    """In the forked child: import ``module`` with standard error going to ``stderr_fd``;
    never returns."""
    os.dup2(stderr_fd, 2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    code = 0
    try:
        importlib.import_module(module)
    except BaseException:  # noqa: BLE001 - any failure of the import is the result
        traceback.print_exc()
        code = 1
    sys.stderr.flush()
    os._exit(code)


def main(modules: list[str]) -> int:
    for name in PRELOAD:
        importlib.import_module(name)
    early = [m for m in sys.modules if m.split(".")[0] in PROJECT]
    if early:
        print(f"a preloaded library imported the project's {early}", file=sys.stderr)
        return 2
    running: dict[int, tuple[str, int]] = {}

    def reap() -> None:
        pid, status = os.wait()
        module, fd = running.pop(pid)
        os.lseek(fd, 0, os.SEEK_SET)
        with os.fdopen(fd, encoding="utf-8", errors="replace") as stream:
            stderr = stream.read()
        print(json.dumps({"module": module, "code": os.waitstatus_to_exitcode(status),
                          "stderr": stderr}), flush=True)

    for module in modules:
        while len(running) >= PARALLEL:
            reap()
        fd, path = tempfile.mkstemp(prefix="import-alone-")
        os.unlink(path)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            _child(module, fd)
        running[pid] = (module, fd)
    while running:
        reap()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
