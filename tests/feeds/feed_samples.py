"""Sample records for the feed tests: offices, brokers and listings an agency could send.

Built with the shared factory (``factories``), every field the golden files show given
here explicitly (``None`` where a sample has no value), so the goldens do not move when the
factory's defaults do.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import factories

from syndication.records import FeedInput, ListingImage, UserImage, Viewing

STOCKHOLM = timezone(timedelta(hours=1))

OFFICE = factories.office_record(
    "KTR-SODER",
    name="Mäklarhuset Söder & Co",
    licence=("hemnet", "blocket", "hittahem"),
    category_defaults={},
    logo_url="https://media.example.se/kontor/soder/logo.png",
    phone="08-640 12 00",
    email="soder@maklarhuset.example.se",
    street="Götgatan 22",
    postal_code="11846",
    city="Stockholm",
    website="https://maklarhuset.example.se/soder",
)

OFFICE_WITHOUT_LOGO = factories.office_record(
    "KTR-NORR",
    name="Norrlandsmäklarna",
    licence=("hemnet", "blocket", "hittahem"),
    category_defaults={},
    phone="090-12 34 56",
    email="info@norrlandsmaklarna.example.se",
)

BROKER_WITH_PORTRAIT = factories.user_record(
    "U-ANNA",
    office_id="KTR-SODER",
    name="Anna Lindqvist",
    email="anna.lindqvist@maklarhuset.example.se",
    phone="070-111 22 33",
    title="Reg. fastighetsmäklare",
    show_on_internet=True,
    images=(
        UserImage("https://media.example.se/u/anna/signatur.png", "signatur", True, 0),
        UserImage("https://media.example.se/u/anna/portratt-gammal.jpg", "portratt", False, 0),
        UserImage("https://media.example.se/u/anna/portratt-2.jpg", "portratt", True, 3),
        UserImage("https://media.example.se/u/anna/portratt-1.jpg", "portratt", True, 1),
    ),
)

BROKER_HIDDEN = factories.user_record(
    "U-ERIK",
    office_id="KTR-NORR",
    name="Erik Öberg",
    email="erik.oberg@norrlandsmaklarna.example.se",
    phone="070-444 55 66",
    show_on_internet=False,
    images=(UserImage("https://media.example.se/u/erik/portratt.jpg", "portratt", True, 0),),
)


def _images(listing_id: str, count: int) -> tuple[ListingImage, ...]:
    captions = ("Framsida", "Vardagsrum", "Kök", "Trädgård", "Planlösning")
    tags = ("Fasad", None, "kok", None, "planritning")
    return tuple(
        ListingImage(
            url=f"https://media.example.se/objekt/{listing_id}/{n}.jpg",
            order=count - n,
            caption=captions[n % len(captions)],
            tag=tags[n % len(tags)],
        )
        for n in range(count)
    )


VILLA = factories.listing_record(
    "OBJ-1001",
    system_id="SYS-77001",
    office_id="KTR-SODER",
    broker_id="U-ANNA",
    category="villa",
    state="for_sale",
    street="Björkvägen 12",
    postal_code="12345",
    city="Farsta",
    municipality="Stockholm",
    area="Hökarängen",
    latitude=59.2421,
    longitude=18.0928,
    price=6_950_000,
    price_type="asking",
    living_area=142.5,
    plot_area=812,
    rooms=6,
    build_year=1938,
    headline="Charmig 30-talsvilla med stor trädgård",
    short_description="Välhållen villa i lugnt läge, nära skola & tunnelbana.",
    description="Ljus villa i två plan.\n\nStor trädgård i söderläge med äppelträd <3.",
    images=_images("OBJ-1001", 3),
    viewings=(
        Viewing(
            datetime(2026, 12, 5, 13, 0, tzinfo=STOCKHOLM),
            datetime(2026, 12, 5, 14, 0, tzinfo=STOCKHOLM),
            "Skoskydd finns",
        ),
        Viewing(datetime(2026, 12, 7, 17, 30, tzinfo=STOCKHOLM)),
    ),
    marketplaces=("hemnet", "blocket", "hittahem"),
)

BOSTADSRATT = factories.listing_record(
    "OBJ-1002",
    office_id="KTR-NORR",
    broker_id="U-ERIK",
    category="bostadsratt",
    state="coming",
    street="Storgatan 40 B",
    postal_code="90326",
    city="Umeå",
    municipality="Umeå",
    price=2_150_000,
    price_type="accepted",
    living_area=58,
    rooms=2.5,
    monthly_fee=3_412,
    headline="Kommande: tvåa vid älven",
    description="Balkong mot Umeälven. Föreningen är skuldfri.",
    images=_images("OBJ-1002", 2),
    marketplaces=("hemnet", "blocket", "hittahem"),
)

FARM_WITHOUT_FARMING = factories.listing_record(
    "OBJ-1003",
    office_id="KTR-SODER",
    broker_id="U-ANNA",
    category="lantbruk",
    orientations=("hastgard", "skogsbruk"),
    state="for_sale",
    street="Ängsgården 1",
    postal_code="76291",
    city="Rimbo",
    municipality="Norrtälje",
    price=8_400_000,
    price_type="asking",
    living_area=190,
    plot_area=215_000,
    rooms=7,
    headline="Hästgård med ridhus",
    description="Gård utan aktivt jordbruk: stall för tolv hästar, ridhus och hagar.",
    images=_images("OBJ-1003", 2),
    marketplaces=("hemnet", "blocket", "hittahem"),
)

FARM_WITH_FARMING = factories.listing_record(
    "OBJ-1004",
    office_id="KTR-NORR",
    broker_id=None,
    category="lantbruk",
    orientations=("jordbruk", "skogsbruk"),
    state="for_sale",
    street="Västra Bygget 3",
    postal_code=None,
    city="Vännäs",
    municipality="Vännäs",
    price=12_500_000,
    price_type="tender",
    living_area=160,
    plot_area=1_450_000,
    rooms=None,
    headline=None,
    description="Brukningsenhet med 60 ha åker och 80 ha skog.",
    images=_images("OBJ-1004", 1),
    marketplaces=("hemnet", "blocket", "hittahem"),
)

SAMPLES: dict[str, FeedInput] = {
    "villa-portrait": factories.feed_input(VILLA, OFFICE, BROKER_WITH_PORTRAIT),
    "bostadsratt-hidden-broker": factories.feed_input(
        BOSTADSRATT, OFFICE_WITHOUT_LOGO, BROKER_HIDDEN
    ),
    "farm-330": factories.feed_input(FARM_WITHOUT_FARMING, OFFICE, BROKER_WITH_PORTRAIT),
    "farm-farming-no-broker": factories.feed_input(FARM_WITH_FARMING, OFFICE_WITHOUT_LOGO, None),
}
"""Name → feed input; each is published on every marketplace (all preconditions met)."""
