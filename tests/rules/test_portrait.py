"""R5 Broker portrait: shown only from a card shown on the internet, the first portrait by order."""

from __future__ import annotations

import factories
import pytest
from hypothesis import given
from hypothesis import strategies as st

from syndication.records import (
    USER_IMAGE_CATEGORIES,
    FeedInput,
    User,
    UserImage,
)
from syndication.rules.portrait import contact_email, portrait, portrait_url


def user(*images: UserImage, shown: bool = True, email: str | None = "a@x.se") -> User:
    """The factory's broker with ``images``, shown on the internet or not."""
    return factories.user_record(email=email, show_on_internet=shown, images=images)


PORTRAIT = UserImage("https://x/p.jpg", "portratt", True, 2)


def test_no_broker_no_portrait() -> None:
    assert portrait(None) is None


def test_card_not_shown_on_the_internet_sends_no_portrait() -> None:
    assert portrait(user(PORTRAIT, shown=False)) is None


def test_portrait_not_marked_to_internet_is_not_sent() -> None:
    assert portrait(user(UserImage("https://x/p.jpg", "portratt", False, 0))) is None


@pytest.mark.parametrize("category", ["signatur", "logotyp", "ovrig"])
def test_other_images_never_go_as_the_portrait(category: str) -> None:
    assert portrait(user(UserImage("https://x/s.png", category, True, 0))) is None


def test_the_first_portrait_by_order_wins() -> None:
    first = UserImage("https://x/first.jpg", "portratt", True, 1)
    hidden = UserImage("https://x/hidden.jpg", "portratt", False, 0)
    sign = UserImage("https://x/sign.png", "signatur", True, 0)
    assert portrait_url(user(PORTRAIT, hidden, sign, first)) == "https://x/first.jpg"


def test_equal_orders_keep_the_cards_order() -> None:
    a = UserImage("https://x/a.jpg", "portratt", True, 0)
    b = UserImage("https://x/b.jpg", "portratt", True, 0)
    assert portrait_url(user(a, b)) == "https://x/a.jpg"


images = st.lists(
    st.builds(
        UserImage,
        url=st.text(min_size=1, max_size=5),
        category=st.sampled_from(USER_IMAGE_CATEGORIES),
        to_internet=st.booleans(),
        order=st.integers(-5, 5),
    ),
    max_size=8,
)


@given(images, st.booleans())
def test_portrait_is_the_minimal_eligible_image(imgs: list[UserImage], shown: bool) -> None:
    chosen = portrait(user(*imgs, shown=shown))
    eligible = [i for i in imgs if i.category == "portratt" and i.to_internet]
    if not shown or not eligible:
        assert chosen is None
    else:
        assert chosen is not None and chosen in eligible
        assert chosen.order == min(i.order for i in eligible)


OFFICE = factories.office_record(email="kontor@x.se")
LISTING = factories.listing_record()


def test_contact_email_is_the_brokers_card_email() -> None:
    assert contact_email(FeedInput(LISTING, OFFICE, user(email="ny@x.se"))) == "ny@x.se"


def test_contact_email_falls_back_to_the_office() -> None:
    assert contact_email(FeedInput(LISTING, OFFICE, None)) == "kontor@x.se"
    assert contact_email(FeedInput(LISTING, OFFICE, user(email=None))) == "kontor@x.se"
