"""The transactional outbox: no state waits for a message that was never sent.

A state that waits for a message (``queued`` for a job, ``sent`` for its
publication check, a fan-out or a feed job to come) is stored in the same
transaction as the message's row in the outbox table; the writer then sends
it, and a relay sends whatever is left until the broker accepts it. See
``docs/reliability.md`` ("Outbox").

* :mod:`.rows` — staging, claiming and settling rows;
* :mod:`.relay` — the relay loop;
* :mod:`.middleware` — the relay thread of each worker and retries that are never lost.
"""

from syndication.outbox.middleware import DurableRetries, OutboxRelay
from syndication.outbox.relay import Relay
from syndication.outbox.rows import (
    Staged,
    Staging,
    claim,
    message_of,
    pending,
    send_claimed,
    send_staged,
    settle_sent,
    stage,
    stage_claimed,
)

__all__ = [
    "DurableRetries",
    "OutboxRelay",
    "Relay",
    "Staged",
    "Staging",
    "claim",
    "message_of",
    "pending",
    "send_claimed",
    "send_staged",
    "settle_sent",
    "stage",
    "stage_claimed",
]
