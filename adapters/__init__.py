"""The edges of the worker: delivery transports, the photo-portal client and
the loopback stand-ins (sandbox marketplaces, photo portal)."""
