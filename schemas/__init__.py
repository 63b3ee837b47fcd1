"""The XSD of every document the feeds emit and the JSON Schema of the input records."""

from importlib import resources
from pathlib import Path


def path(name: str) -> Path:
    """The file ``name`` in this folder."""
    return Path(str(resources.files(__name__).joinpath(name)))
