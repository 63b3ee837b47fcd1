"""Every response a test receives, held to the served OpenAPI document.

:class:`OpenApiCheck` finds the operation of a response (method and path
template), requires its status code among the operation's responses and its
content type among that response's, and validates a JSON body with
jsonschema (draft 2020-12, as OpenAPI 3.1 has it) against the schema there,
``$ref`` s resolved inside the document. A response outside the document
fails the test that received it.
"""

from __future__ import annotations

import re
from typing import Any

import requests
from jsonschema import Draft202012Validator
from lxml import etree
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOCUMENT_URI = "urn:syndication:openapi"


class OutsideDocument(AssertionError):
    """A response the OpenAPI document does not describe."""


class OpenApiCheck:
    def __init__(self, document: dict[str, Any], prefix: str = "") -> None:
        self.document = document
        self.registry = Registry().with_resource(
            DOCUMENT_URI, Resource(contents=document, specification=DRAFT202012)
        )
        self.operations: list[tuple[re.Pattern[str], str, str]] = []
        for template, item in document["paths"].items():
            pattern = re.compile("^" + re.sub(r"\{[^/}]+\}", "[^/]+", re.escape(template)
                                              .replace(r"\{", "{").replace(r"\}", "}")) + "$")
            for method in item:
                self.operations.append((pattern, method, template))
        self.checked = 0

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]]:
        matches = [t for p, m, t in self.operations if m == method.lower() and p.match(path)]
        if not matches:
            raise OutsideDocument(f"{method} {path}: no such operation in the document")
        template = min(matches, key=lambda t: t.count("{"))
        return template, self.document["paths"][template][method.lower()]

    def check(self, response: requests.Response) -> None:
        request = response.request
        path = requests.utils.urlparse(request.url).path
        template, operation = self.operation(request.method or "GET", path)
        where = f"{request.method} {template} → {response.status_code}"
        described = operation["responses"].get(str(response.status_code)) \
            or operation["responses"].get("default")
        if described is None:
            raise OutsideDocument(f"{where}: status not in the document "
                                  f"({sorted(operation['responses'])}); body {response.text[:300]}")
        content = described.get("content")
        if not content:
            if response.content:
                raise OutsideDocument(f"{where}: a body where the document has none")
            self.checked += 1
            return
        media = response.headers.get("content-type", "").split(";")[0].strip()
        if media not in content:
            raise OutsideDocument(f"{where}: content type {media!r} not in {sorted(content)}")
        if media == "application/json":
            pointer = "/".join(part.replace("~", "~0").replace("/", "~1") for part in
                               ("paths", template, request.method.lower(), "responses",
                                str(response.status_code) if str(response.status_code)
                                in operation["responses"] else "default",
                                "content", media, "schema"))
            validator = Draft202012Validator({"$ref": f"{DOCUMENT_URI}#/{pointer}"},
                                             registry=self.registry)
            errors = sorted(validator.iter_errors(response.json()), key=lambda e: e.path)
            if errors:
                raise OutsideDocument(f"{where}: body does not match the document: "
                                      f"{errors[0].message} at {list(errors[0].path)}")
        elif media == "application/xml":
            etree.fromstring(response.content, etree.XMLParser(resolve_entities=False))
        self.checked += 1


class CheckedSession(requests.Session):
    """A ``requests`` session whose every response is checked against the document."""

    def __init__(self, base_url: str, check: OpenApiCheck | None = None) -> None:
        super().__init__()
        self.base_url = base_url
        self.openapi = check

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
                ) -> requests.Response:  # type: ignore[override]
        target = url if str(url).startswith("http") else self.base_url + str(url)
        kwargs.setdefault("timeout", 30)
        response = super().request(method, target, *args, **kwargs)
        if self.openapi is not None and "/api/v1/openapi.json" not in str(target):
            self.openapi.check(response)
        return response
