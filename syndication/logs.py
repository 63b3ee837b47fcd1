"""Structured logging (structlog) with secrets redacted.

:func:`configure` is called once by the CLI. Every log line passes through
:func:`redact_secrets`, which masks the value of any key that names a secret
(password, token, key, authorization, …), and in any text — messages and the
formatted traceback of a logged exception alike, since it runs after
``format_exc_info`` — any ``user:password@`` in a URL, any argon2 hash and the
value of any ``password=…``/``token: …`` written into the text, so a secret
never reaches a log whatever a caller binds or an exception says.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

SECRET_KEY = re.compile(
    r"pass(word)?|secret|token|api[_-]?key|authori[sz]ation|credential|hash|cookie|session", re.I
)
URL_CREDENTIALS = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^/\s:@]*):(?P<pw>[^/\s@]+)@", re.I
)
ARGON2_HASH = re.compile(r"\$argon2(?:id|i|d)\$[^\s'\"]*")
SECRET_IN_TEXT = re.compile(
    r"(?P<key>\b\w*(?:pass(?:word|wd)?|secret|token|api[_-]?key|authori[sz]ation|credential|cookie)"
    r"\w*['\"]?\s*[=:]\s*)"
    r"(?P<quote>(?:[bru](?=['\"]))?['\"]?(?:(?:bearer|basic|token)\s+)?)"
    r"(?P<value>[^\s'\",;&)}\]]+)",
    re.I,
)
MASK = "***"


def scrub_text(text: str) -> str:
    """``text`` with credentials in URLs, argon2 hashes and ``secret=value`` values masked."""
    text = URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = ARGON2_HASH.sub(MASK, text)
    return SECRET_IN_TEXT.sub(lambda m: f"{m['key']}{m['quote']}{MASK}", text)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {k: MASK if SECRET_KEY.search(str(k)) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v) for v in value)
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask secret-named keys, and secrets written into any text."""
    for key in list(event_dict):
        if SECRET_KEY.search(key):
            event_dict[key] = MASK
        else:
            event_dict[key] = _scrub(event_dict[key])
    return event_dict


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time of writing, so a logger
    configured once keeps working when stderr is swapped (test capture, daemons)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(level: str = "INFO", fmt: str = "console", stream: Any = None) -> None:
    """Set up structlog; ``fmt`` is ``console`` (for a terminal) or ``json`` (for collectors)."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream or _CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


def get_logger(**bound: Any) -> Any:
    """A structlog logger with ``bound`` context (listing_id, marketplace, …)."""
    return structlog.get_logger("syndication").bind(**bound)


def writes(level: int) -> bool:
    """Whether a line at ``level`` (``logging.DEBUG``, …) is written under the current
    configuration. A hot path asks before it binds a logger for a line that would be
    dropped: binding costs more than the line. Unknown logger classes say yes."""
    enabled = getattr(structlog.get_config()["wrapper_class"], "is_enabled_for", None)
    return True if enabled is None else bool(enabled(None, level))
