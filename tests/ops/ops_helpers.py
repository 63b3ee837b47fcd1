"""Helpers of the operations tests: scraping an exposition, polling a URL."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str, **kwargs: Any) -> Samples:
    """Every sample of the exposition at ``url``: ``(name, labels) -> value``."""
    response = requests.get(url, timeout=10, **kwargs)
    assert response.status_code == 200, (url, response.status_code, response.text)
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample ``name`` with exactly ``labels``; an absent sample is an error."""
    key = (name, frozenset(labels.items()))
    assert key in samples, f"no sample {name}{labels}; have " + ", ".join(
        sorted(f"{n}{dict(sorted(ls))}" for n, ls in samples if n == name))
    return samples[key]


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of every sample ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def status_of(url: str) -> tuple[int, str]:
    try:
        response = requests.get(url, timeout=5)
    except requests.ConnectionError:
        return 0, ""
    return response.status_code, response.text


def eventually(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
