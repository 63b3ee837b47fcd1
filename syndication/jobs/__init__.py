"""The dramatiq actors, one module per capability.

Importing this package declares every actor on dramatiq's configured broker,
so the broker must be set up first (``syndication.broker.setup_broker``);
``worker.py`` does that for ``dramatiq worker``.
"""

from importlib import import_module

JOB_MODULES: tuple[str, ...] = (
    "syndication.jobs.transfer",
    "syndication.jobs.final_prices",
    "syndication.jobs.photos",
)

for _name in JOB_MODULES:
    try:
        import_module(_name)
    except ModuleNotFoundError as _exc:  # a capability not installed in this build
        if _exc.name != _name:
            raise
