"""The dramatiq actors, one module per capability.

Importing this package declares every actor on dramatiq's configured broker,
so the broker must be set up first: :func:`syndication.broker.setup_broker`
sets it up and then imports this package, which is how ``worker.py`` and every
command get the actors. Imported before that, it stops with an error that says
so, where dramatiq would create a default broker without our middleware and
refuse the actors' ``lifecycle=`` option.
"""

from importlib import import_module

import dramatiq.broker

from syndication.middleware import JobLifecycle

JOB_MODULES: tuple[str, ...] = (
    "syndication.jobs.transfer",
    "syndication.jobs.final_prices",
    "syndication.jobs.photos",
    "syndication.jobs.reconcile",
)


def _require_configured_broker() -> None:
    """Refuse to declare the actors on a broker ``setup_broker`` did not set up."""
    broker = dramatiq.broker.global_broker
    if broker is None or not any(isinstance(m, JobLifecycle) for m in broker.middleware):
        raise RuntimeError(
            "syndication.jobs was imported before the broker was set up: "
            "call syndication.broker.setup_broker() first, which declares the actors"
        )


_require_configured_broker()

for _name in JOB_MODULES:
    import_module(_name)
