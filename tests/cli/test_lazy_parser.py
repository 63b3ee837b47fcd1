"""The lazy command line says exactly what the full one says.

:func:`syndication.cli.main` imports only the module of the command it runs; the
other commands are placeholders built from :data:`syndication.cli.COMMANDS`. These
tests pin that table to what the command modules register, so a help line changed
in a module and not in the table (or the reverse) fails here, and check that the
top-level help loads no command module at all.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys

import pytest

from syndication.cli import COMMANDS, build_parser, named_command


def _answer(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[object, str, str]:
    """Exit status, standard output and standard error of parsing ``argv``."""
    out, err = io.StringIO(), io.StringIO()
    code: object = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def _lazy(argv: list[str]) -> argparse.ArgumentParser:
    command = named_command(argv)
    return build_parser(load=() if command is None else (command,))


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The sub-commands of ``parser`` by name (none for a command without actions)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_the_table_names_every_registered_command_in_order() -> None:
    assert list(_subcommands(build_parser())) == list(COMMANDS)


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["-h"], [], ["no-such-command"], ["--", "no-such-command"]],
    ids=["help", "h", "nothing", "unknown", "dashes"],
)
def test_the_top_level_answers_as_the_full_parser(argv: list[str]) -> None:
    assert _answer(_lazy(argv), argv) == _answer(build_parser(), argv)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_answers_as_in_the_full_parser(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--help``, no arguments and a bad flag: the same output and exit status."""
    monkeypatch.setenv("COLUMNS", "100")
    for argv in ([name, "--help"], [name], [name, "--no-such-flag"]):
        assert _answer(_lazy(argv), argv) == _answer(build_parser(), argv), argv
    full = _subcommands(build_parser())[name]
    for action, inner in _subcommands(full).items():
        argv = [name, action, "--help"]
        assert _answer(_lazy(argv), argv) == _answer(build_parser(), argv), argv
        assert inner.prog == f"syndication {name} {action}"


def test_the_top_level_help_imports_no_command_module() -> None:
    """``syndication --help`` in a fresh process loads none of the commands' modules (nor
    the store or the HTTP service they import); ``syndication migrate --help`` loads
    migrate's alone."""
    probe = (
        "import sys\n"
        "from syndication.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('syndication.cli.')\n"
        "                or m in ('fastapi', 'sqlmodel', 'alembic'))\n"
        "print(' '.join(loaded), file=sys.stderr)\n"
    )

    def loaded(*argv: str) -> list[str]:
        done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True,
                              text=True, timeout=120, check=False)
        assert "usage: syndication" in done.stdout, done.stderr
        return done.stderr.strip().splitlines()[-1].split() if done.stderr.strip() else []

    assert loaded("--help") == []
    assert [m for m in loaded("migrate", "--help") if m.startswith("syndication.cli.")] == [
        "syndication.cli.migrate"
    ]
