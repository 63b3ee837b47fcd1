"""R5 Broker portrait: which image of the user card goes to the marketplaces.

A portrait goes only when the user card is marked "Ska visas på
Internet/Visitkort" (``show_on_internet``) and the user has an image of
category ``portratt`` marked ``to_internet``; of several, the first by order
(ties keep the card's order). Signatures, logos and other images never go as
the portrait. The broker's card e-mail is the contact e-mail on every
marketplace, so a change on the card reaches them at the next transfer.
"""

from __future__ import annotations

from syndication.records import FeedInput, User, UserImage

PORTRAIT = "portratt"


def portrait(broker: User | None) -> UserImage | None:
    """The broker's portrait for the marketplaces, or ``None`` when none may be shown."""
    if broker is None or not broker.show_on_internet:
        return None
    candidates = [img for img in broker.images if img.category == PORTRAIT and img.to_internet]
    if not candidates:
        return None
    return min(candidates, key=lambda img: img.order)


def portrait_url(broker: User | None) -> str | None:
    """The URL of :func:`portrait`, or ``None``."""
    image = portrait(broker)
    return image.url if image is not None else None


def contact_email(feed_input: FeedInput) -> str | None:
    """The contact e-mail shown with the listing: the broker's card e-mail,
    or the office's when the listing has no broker or the card has none."""
    broker = feed_input.broker
    if broker is not None and broker.email:
        return broker.email
    return feed_input.office.email
