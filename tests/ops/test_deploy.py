"""The example units in ``deploy/`` parse and run commands the CLI has; the alert rules
parse and name only metrics the project exposes."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from availability import unavailable
from sqlalchemy import Engine

from syndication.circuit import CircuitBreaker
from syndication.cli import build_parser
from syndication.metrics import StateCollector, exposition
from syndication.registry import names

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service")) + sorted(
    (DEPLOY / "systemd").glob("*.target"))
SERVICES = [unit for unit in UNITS if unit.suffix == ".service"]
INSTALLED = "/opt/syndication/venv/bin/syndication"
HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
             "PrivateTmp": "yes", "CapabilityBoundingSet": ""}


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None,
                                       comment_prefixes=("#", ";"), delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser


def test_every_unit_is_there() -> None:
    assert {p.name for p in UNITS} == {
        "syndication-serve.service", "syndication-worker@.service",
        "syndication-scheduler.service", "syndication-migrate.service", "syndication.target"}


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: p.name)
def test_service_has_the_required_keys(path: Path) -> None:
    service = unit(path)
    assert service["Unit"]["Description"]
    body = service["Service"]
    assert body["EnvironmentFile"] == "/etc/syndication/syndication.env"
    assert body["User"] == "syndication"
    assert body["ExecStart"].startswith(INSTALLED + " ")
    for key, expected in HARDENING.items():
        assert body.get(key) == expected, (path.name, key)
    if body["Type"] != "oneshot":
        assert body["Restart"] == "on-failure" and body["RestartPreventExitStatus"] == "2"
        assert service["Install"]["WantedBy"] == "syndication.target"
    if "--health-port" in body["ExecStart"]:
        assert body["Type"] == "notify"


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: p.name)
def test_the_command_exists_in_the_cli(path: Path) -> None:
    command = shlex.split(unit(path)["Service"]["ExecStart"].replace("%i", "1"))
    assert command[0] == INSTALLED
    args = build_parser().parse_args(command[1:])  # an unknown command or flag exits here
    assert callable(args.func)


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """The units as systemd reads them, with the command pointed at this installation's
    ``syndication`` (verify insists that the command is executable). Warnings count."""
    if shutil.which("systemd-analyze") is None:
        unavailable("systemd-analyze (Debian's systemd package) is not installed")
    here = str(Path(sys.executable).with_name("syndication"))
    for path in UNITS:
        (tmp_path / path.name).write_text(path.read_text().replace(INSTALLED, here))
    names = [f"./{p.name.replace('@.', '@1.')}" for p in UNITS]
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *names], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    ours = [line for line in result.stderr.splitlines() if "syndication" in line]
    assert result.returncode == 0 and not ours, result.stderr


def test_the_alert_rules_parse_and_name_exposed_metrics(sqlite_engine: Engine) -> None:
    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    [group] = rules["groups"]
    assert len(group["rules"]) == 3
    collector = StateCollector(sqlite_engine, breaker=CircuitBreaker(), marketplaces=names())
    exposed = exposition(collector).decode()
    metric_names = {line.split()[2] for line in exposed.splitlines() if line.startswith("# TYPE")}
    for rule in group["rules"]:
        assert {"alert", "expr", "for", "labels", "annotations"} <= set(rule)
        assert rule["annotations"]["summary"] and rule["labels"]["severity"]
        metrics = {word for word in _identifiers(rule["expr"]) if word.startswith("syndication_")}
        assert metrics and metrics <= metric_names, (rule["alert"], metrics - metric_names)


def test_the_alert_rules_are_the_ones_in_the_runbook() -> None:
    runbook = (DEPLOY.parent / "docs" / "operations.md").read_text()
    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())["groups"][0]["rules"]
    for rule in rules:
        assert f"alert: {rule['alert']}" in runbook
        assert f"expr: {rule['expr']}" in runbook


def _identifiers(expr: str) -> set[str]:
    import re

    return set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
