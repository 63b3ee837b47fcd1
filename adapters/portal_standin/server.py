"""The broker system's HTTP API of the portal stand-in (documented in the README)."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from adapters.portal_standin.portal import (
    STATUS_FETCHED,
    STATUS_TEXT,
    Assignment,
    PortalRuleError,
    PortalStandIn,
)


def make_server(portal: PortalStandIn) -> ThreadingHTTPServer:
    """A server on a free port of 127.0.0.1 answering for ``portal``."""
    handler = type("Handler", (_Handler,), {"portal": portal})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    return server


def assignment_json(assignment: Assignment, base_url: str) -> dict[str, Any]:
    """The API's view of an assignment, images in the portal's order."""
    return {
        "id": assignment.id,
        "system_id": assignment.system_id,
        "name": assignment.name,
        "status": assignment.status,
        "status_text": STATUS_TEXT[assignment.status],
        "images": [
            {
                "id": image.id,
                "title": image.title,
                "tag": image.tag,
                "order": image.order,
                "content_type": image.content_type,
                "size": len(image.content),
                "sha256": hashlib.sha256(image.content).hexdigest(),
                "transferred_at": image.transferred_at.isoformat()
                if image.transferred_at
                else None,
                "content_url": f"{base_url}/api/images/{image.id}/content",
            }
            for image in sorted(assignment.images, key=lambda i: (i.order, i.id))
        ],
        "history": list(assignment.history),
    }


_ASSIGNMENT = re.compile(r"^/api/assignments/([^/]+)$")
_STATUS = re.compile(r"^/api/assignments/([^/]+)/status$")
_CONTENT = re.compile(r"^/api/images/([^/]+)/content$")


class _Handler(BaseHTTPRequestHandler):
    portal: PortalStandIn
    protocol_version = "HTTP/1.1"
    # Small JSON answers on a kept-alive connection would otherwise wait for
    # the client's delayed ACK (about 40 ms each).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: the stand-in does not write access logs to stderr."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def _dispatch(self, method: str) -> None:
        portal = self.portal
        path = urlsplit(self.path).path
        portal.requests[f"{method} {path}"] += 1
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if portal._faults.delay:
            time.sleep(portal._faults.delay)
        if self.headers.get("Authorization") != f"Bearer {portal.token}":
            return self._json(401, {"error": "missing or wrong bearer token"})
        status = portal._take_error(path)
        if status is not None:
            retry_after = {"Retry-After": "7"} if status == 429 else {}
            return self._json(status, {"error": "injected fault"}, retry_after)
        try:
            if method == "GET" and path == "/api/assignments":
                return self._list()
            if method == "GET" and (m := _ASSIGNMENT.match(path)):
                return self._json(200, assignment_json(portal.assignment(m[1]), portal.url))
            if method == "GET" and (m := _CONTENT.match(path)):
                return self._content(m[1])
            if method == "PUT" and (m := _STATUS.match(path)):
                return self._set_status(m[1], body)
        except KeyError as exc:
            return self._json(404, {"error": f"not found: {exc.args[0]}"})
        except PortalRuleError as exc:
            return self._json(409, {"error": str(exc)})
        return self._json(404, {"error": f"no such endpoint: {method} {path}"})

    def _list(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        if query.get("status", ["1"]) != ["1"]:
            return self._json(400, {"error": "only status=1 can be listed"})
        items = [
            {"id": a.id, "system_id": a.system_id, "name": a.name, "status": a.status}
            for a in self.portal.ready()
        ]
        return self._json(200, {"assignments": items})

    def _set_status(self, assignment_id: str, body: bytes) -> None:
        try:
            status = json.loads(body)["status"]
        except (ValueError, KeyError, TypeError):
            return self._json(400, {"error": 'body must be {"status": 2}'})
        if status != STATUS_FETCHED:
            return self._json(400, {"error": "the broker system can only set status 2"})
        assignment = self.portal.mark_fetched(assignment_id)
        return self._json(200, {"id": assignment.id, "status": assignment.status})

    def _content(self, image_id: str) -> None:
        image = self.portal.find_image(image_id)
        cut = self.portal._take_cut(image_id)
        self.send_response(200)
        self.send_header("Content-Type", image.content_type)
        if self.portal._faults.no_length:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(image.content)))
        self.end_headers()
        if cut is None:
            self.wfile.write(image.content)
            return
        self.wfile.write(image.content[:cut])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
