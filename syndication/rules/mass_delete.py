"""R15 Mass deletion: when the deletes of one ingest or transfer are held for a person.

One ingest or transfer that would remove more than a set share of an office's
published listings from one marketplace at once, and at least a set number
of them, is held instead of sent (the source system sent the office without
its listings, a half-finished export, a wrong filter). :func:`holds_back` is
the decision; ``published`` counts the listings the marketplace holds for the
office before the change, ``removing`` those the change would delete there.
With the defaults (share 0.2, at least 5):

===  ========  =========  ==========================================  ======
row  removing  published  why                                         held
===  ========  =========  ==========================================  ======
1    0         any        nothing to remove                           no
2    4         4          fewer than the minimum, whatever the share  no
3    5         100        a normal day: 5 % of the office             no
4    20        100        exactly the share is not more than it       no
5    21        100        more than the share and at least 5          yes
6    5         5          every listing of a small office             yes
7    5         25         exactly the share                           no
8    6         25         more than the share                         yes
===  ========  =========  ==========================================  ======

The minimum keeps a small office's normal day (two sold, one withdrawn) from
needing a person; the share keeps a large office's from it.
"""

from __future__ import annotations

DEFAULT_SHARE = 0.2
DEFAULT_MINIMUM = 5


def holds_back(removing: int, published: int, share: float = DEFAULT_SHARE,
               minimum: int = DEFAULT_MINIMUM) -> bool:
    """True when removing ``removing`` of ``published`` listings at once must wait for a
    person: at least ``minimum`` of them and more than ``share`` of the published."""
    return removing >= minimum and removing > share * published
