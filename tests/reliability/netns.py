"""Three "hosts" of the test's own: network namespaces joined by veth pairs.

:class:`Topology` builds, for one test run, the namespaces ``syn<id>a`` and
``syn<id>b`` (the worker hosts) and ``syn<id>s`` (Redis, PostgreSQL and the
sandbox marketplaces), ``<id>`` a short random id so parallel runs never
meet. Each worker host has two veth pairs to the services host, each a /30
of ``10.231.<n>.0/24``: one that carries its Redis traffic and one that
carries the database and the marketplaces, so a partition can cut one host
from Redis alone (``ip link set … down`` on both ends) while it still
reaches the store and the marketplaces. Nothing but the namespaces' own
addresses and loopback is ever addressed.

:meth:`Topology.close` kills what was started inside and deletes the
namespaces (which deletes their veths); it runs even when the test failed.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from availability import unavailable

CLONE_NEWNET = 0x40000000
HOSTS = ("a", "b")
KINDS = ("r", "d")
"""``r``: the link to Redis; ``d``: the link to the database and the marketplaces."""
T = TypeVar("T")


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


@dataclass(frozen=True)
class Link:
    """One veth pair between a worker host and the services host."""

    host: str
    kind: str
    host_end: str
    services_end: str
    host_address: str
    services_address: str


@dataclass
class Topology:
    """The namespaces and links of one run; see the module's docstring."""

    run_id: str = field(default_factory=lambda: secrets.token_hex(2))
    subnet: int = field(default_factory=lambda: secrets.randbelow(256))
    links: dict[tuple[str, str], Link] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)

    def namespace(self, host: str) -> str:
        """The namespace of host ``a``, ``b`` or ``s`` (services)."""
        return f"syn{self.run_id}{host}"

    def build(self) -> Topology:
        """Create the namespaces and links; skip the test when the machine cannot."""
        if os.geteuid() != 0:
            unavailable("the several-hosts test needs root for ip netns and veth pairs")
        if shutil.which("ip") is None:
            unavailable("the several-hosts test needs iproute2's `ip`")
        for host in (*HOSTS, "s"):
            name = self.namespace(host)
            try:
                _ip("netns", "add", name)
            except RuntimeError as error:
                unavailable(f"ip netns is unavailable here: {error}")
            self.created.append(name)
            _ip("-n", name, "link", "set", "lo", "up")
        for index, (host, kind) in enumerate((h, k) for h in HOSTS for k in KINDS):
            link = Link(host, kind, f"v{self.run_id}{host}{kind}h", f"v{self.run_id}{host}{kind}s",
                        f"10.231.{self.subnet}.{4 * index + 1}",
                        f"10.231.{self.subnet}.{4 * index + 2}")
            _ip("link", "add", link.host_end, "netns", self.namespace(host), "type", "veth",
                "peer", "name", link.services_end, "netns", self.namespace("s"))
            for end, namespace, address in ((link.host_end, host, link.host_address),
                                            (link.services_end, "s", link.services_address)):
                _ip("-n", self.namespace(namespace), "addr", "add", f"{address}/30", "dev", end)
                _ip("-n", self.namespace(namespace), "link", "set", end, "up")
            self.links[(host, kind)] = link
        return self

    def link(self, host: str, kind: str) -> Link:
        return self.links[(host, kind)]

    def argv(self, host: str, *command: str, hostname: str | None = None) -> list[str]:
        """``command`` run inside ``host``'s namespace; with ``hostname``, also in a UTS
        namespace of its own under that name, so the process reports another host."""
        if hostname is None:
            return ["ip", "netns", "exec", self.namespace(host), *command]
        return ["ip", "netns", "exec", self.namespace(host), "unshare", "--uts", "sh", "-c",
                f'hostname {hostname} && exec "$@"', "sh", *command]

    def set_link(self, host: str, kind: str, up: bool) -> None:
        """Take both ends of a link down (a partition) or up again (healed)."""
        link = self.link(host, kind)
        state = "up" if up else "down"
        _ip("-n", self.namespace(host), "link", "set", link.host_end, state)
        _ip("-n", self.namespace("s"), "link", "set", link.services_end, state)

    def run_inside(self, host: str, work: Callable[[], T]) -> T:
        """Run ``work`` on a thread that joined ``host``'s network namespace: every socket
        it opens (and every thread it starts) lives there."""
        result: list[T] = []
        failure: list[BaseException] = []

        def inside() -> None:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{self.namespace(host)}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns into " + self.namespace(host))
            finally:
                os.close(fd)
            try:
                result.append(work())
            except BaseException as error:  # handed to the caller below
                failure.append(error)

        thread = threading.Thread(target=inside, name=f"netns-{host}")
        thread.start()
        thread.join()
        if failure:
            raise failure[0]
        return result[0]

    def close(self) -> None:
        """Kill every process left in the namespaces, then delete them (and their veths)."""
        for name in self.created:
            pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True,
                                  text=True, check=False).stdout.split()
            for pid in pids:
                if pid == str(os.getpid()):
                    continue
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
        for name in reversed(self.created):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        self.created.clear()
