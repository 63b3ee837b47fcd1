"""Sandbox marketplaces: loopback HTTP stand-ins for Hemnet, Blocket Bostad
and HittaHem that validate, publish with a delay, fail on request and count.

Run standalone with ``python -m adapters.sandbox`` (see ``--help``).
"""

from adapters.sandbox.faults import Fault, Faults
from adapters.sandbox.marketplace import Answer, Received, SandboxMarketplace
from adapters.sandbox.server import Sandbox

__all__ = ["Answer", "Fault", "Faults", "Received", "Sandbox", "SandboxMarketplace"]
