"""Loading the marketplaces: the file-drop default, the TOML file, and clear
errors naming the marketplace and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from transport_helpers import TOKEN, delivery

from adapters.config import load_contacts, load_marketplaces
from adapters.feed import FeedTransport
from adapters.filedrop import FileDropTransport
from adapters.http import HttpTransport
from syndication import registry
from syndication.errors import ConfigurationError
from syndication.settings import Settings

EXAMPLE = Path(__file__).parents[2] / "examples" / "marketplaces.toml"


def write(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "marketplaces.toml"
    path.write_text(text, encoding="utf-8")
    return Settings(marketplaces_file=path, outbox=tmp_path / "out", environ={"TOK": "t0k3n"})


def test_without_a_file_everything_goes_to_the_outbox_with_default_contacts(tmp_path):
    configs = load_marketplaces(Settings(outbox=tmp_path))
    assert list(configs) == ["hemnet", "blocket", "hittahem", "kyero"]
    for name, config in configs.items():
        assert config.name == name
        if registry.get(name).pull:
            assert config.kind == "feed" and isinstance(config.transport, FeedTransport)
            assert config.url == (tmp_path / name).absolute().as_uri()
        else:
            assert config.kind == "file"
            assert isinstance(config.transport, FileDropTransport)
            assert config.transport.outbox == tmp_path
        contacts = config.contacts
        assert contacts.name and contacts.email and contacts.phone and contacts.web
        assert "try the transfer again first" in contacts.advice
    assert configs["hemnet"].contacts.name.startswith("Hemnet")
    assert configs["blocket"].contacts.name.startswith("Blocket Bostad")
    assert configs["hittahem"].contacts.name.startswith("HittaHem")


def test_the_example_file_loads(tmp_path):
    settings = Settings(
        marketplaces_file=EXAMPLE,
        outbox=tmp_path,
        environ={"HEMNET_TOKEN": "h", "BLOCKET_TOKEN": "b"},
    )
    configs = load_marketplaces(settings)
    hemnet, blocket, hittahem = configs["hemnet"], configs["blocket"], configs["hittahem"]
    assert isinstance(hemnet.transport, HttpTransport)
    assert hemnet.transport.timeout == (3.05, 15.0)
    assert hemnet.transport.session.headers["Authorization"] == "Bearer h"
    assert hemnet.token_env == "HEMNET_TOKEN"
    assert blocket.transport.timeout == (3.05, 20.0)
    assert hittahem.kind == "file" and hittahem.transport.outbox == Path("outbox")
    assert hemnet.contacts.phone == "08-55 80 63 00"
    assert "try the transfer again first" in hemnet.contacts.advice


def test_contacts_are_merged_over_the_defaults(tmp_path):
    settings = write(
        tmp_path,
        '[marketplaces.blocket.contacts]\nphone = "08-1"\n',
    )
    contacts = load_marketplaces(settings)["blocket"].contacts
    assert contacts.phone == "08-1" and contacts.name.startswith("Blocket")


def test_a_marketplace_left_out_keeps_the_file_drop(tmp_path):
    settings = write(tmp_path, '[marketplaces.hemnet]\ntransport = "http"\nurl = "http://x"\n')
    configs = load_marketplaces(settings)
    assert configs["hemnet"].kind == "http" and configs["blocket"].kind == "file"


def test_the_retry_budget_comes_from_the_file(sandbox, tmp_path):
    path = sandbox.write_marketplaces_file(tmp_path / "mp.toml", token_env="TOK", max_attempts=3)
    waits: list[float] = []
    settings = Settings(marketplaces_file=path, environ={"TOK": TOKEN})
    transport = load_marketplaces(settings, sleep=waits.append)["hittahem"].transport
    sandbox["hittahem"].faults.fail_next(5, status=503)
    with pytest.raises(Exception, match="503"):
        transport.send(delivery("hittahem"))
    assert sandbox["hittahem"].call_count() == 3 and len(waits) == 2
    transport.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[marketplaces.ebay]\n", r"unknown marketplace 'ebay'"),
        ("[marketplaces.hemnet]\nurll = 'x'\n", r"marketplace 'hemnet'.*unknown key 'urll'"),
        ("[marketplaces.hemnet]\ntransport = 'ftp'\n", r"'hemnet', key 'transport'"),
        ("[marketplaces.hemnet]\ntransport = 'http'\n", r"'hemnet', key 'url'"),
        (
            "[marketplaces.blocket]\ntransport = 'http'\nurl = 'ftp://x'\n",
            r"'blocket', key 'url'",
        ),
        (
            "[marketplaces.blocket]\ntransport = 'http'\nurl = 'https://x'\ntoken_env = 'NOPE'\n",
            r"'blocket', key 'token_env': environment variable NOPE is not set",
        ),
        ("[marketplaces.hittahem]\nread_timeout = -1\n", r"'hittahem', key 'read_timeout'"),
        ("[marketplaces.hittahem]\nconnect_timeout = 'fast'\n", r"key 'connect_timeout'"),
        ("[marketplaces.hittahem]\nmax_attempts = 0\n", r"'hittahem', key 'max_attempts'"),
        ("[marketplaces.hittahem]\nmax_attempts = 2.5\n", r"key 'max_attempts'"),
        ("[marketplaces.hemnet.contacts]\nfax = '1'\n", r"'hemnet', key 'contacts.fax'"),
        ("[marketplaces.hemnet.contacts]\nphone = ''\n", r"'hemnet', key 'contacts.phone'"),
        ("[marketplaces.hemnet]\ncontacts = 'x'\n", r"'hemnet', key 'contacts'"),
        ("[defaults]\nmax_delay = 0\n", r"key 'max_delay'"),
        ("[defaults]\nurl = 'http://x'\n", r"\[defaults\]: unknown key 'url'"),
        ("marketplaces = 3\n", r"\[marketplaces\] must be a table"),
        ("hemnet = 1\n", r"unknown table or key 'hemnet'"),
        ("[marketplaces\n", r"not valid TOML"),
    ],
)
def test_bad_files_name_the_marketplace_and_the_key(tmp_path, text, expected):
    with pytest.raises(ConfigurationError, match=expected):
        load_marketplaces(write(tmp_path, text))


def test_a_missing_file_is_a_configuration_error(tmp_path):
    settings = Settings(marketplaces_file=tmp_path / "nowhere.toml")
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_marketplaces(settings)


def test_the_token_is_not_in_the_error_or_the_config(tmp_path):
    settings = write(
        tmp_path,
        "[marketplaces.hemnet]\ntransport = 'http'\nurl = 'https://x'\ntoken_env = 'TOK'\n"
        "read_timeout = 0\n",
    )
    with pytest.raises(ConfigurationError) as caught:
        load_marketplaces(settings)
    assert "t0k3n" not in str(caught.value)
    good = write(
        tmp_path,
        "[marketplaces.hemnet]\ntransport = 'http'\nurl = 'https://x'\ntoken_env = 'TOK'\n",
    )
    assert "t0k3n" not in repr(load_marketplaces(good)["hemnet"])


def test_contacts_load_without_building_transports(tmp_path: Path) -> None:
    """load_contacts reads no credential: the token variable may be unset, while building
    the transports still names it."""
    path = tmp_path / "marketplaces.toml"
    path.write_text(
        '[marketplaces.blocket]\ntransport = "http"\nurl = "https://api.blocket.example"\n'
        'token_env = "BLOCKET_TOKEN_UNSET"\n[marketplaces.blocket.contacts]\nphone = "010-1"\n',
        encoding="utf-8",
    )
    settings = Settings(marketplaces_file=path, environ={})
    contacts = load_contacts(settings)
    assert contacts["blocket"].phone == "010-1"
    assert contacts["blocket"].name == registry.get("blocket").contacts.name
    assert contacts["hemnet"] == registry.get("hemnet").contacts
    with pytest.raises(ConfigurationError, match="BLOCKET_TOKEN_UNSET"):
        load_marketplaces(settings)


def test_transport_kinds_come_from_the_table_and_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "marketplaces.toml"
    path.write_text('[marketplaces.hemnet]\ntransport = "carrier-pigeon"\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match="must be one of file, http for Hemnet"):
        load_marketplaces(Settings(marketplaces_file=path, environ={}))


def test_a_pull_marketplace_is_configured_with_its_feed_target(tmp_path: Path) -> None:
    served = tmp_path / "www"
    served.mkdir()
    path = tmp_path / "marketplaces.toml"
    path.write_text(
        f'[marketplaces.kyero]\ntransport = "feed"\ntarget = "folder"\nfolder = "{served}"\n'
        'public_url = "https://feeds.example.se/kyero"\n',
        encoding="utf-8",
    )
    config = load_marketplaces(Settings(marketplaces_file=path, environ={}))["kyero"]
    assert config.kind == "feed" and isinstance(config.transport, FeedTransport)
    source = tmp_path / "feed.xml"
    source.write_bytes(b"<root/>")
    address = config.transport.publish("kyero-K1.xml", source)
    assert address == "https://feeds.example.se/kyero/kyero-K1.xml"
    assert (served / "kyero-K1.xml").read_bytes() == b"<root/>"
    path.write_text('[marketplaces.kyero]\ntransport = "http"\nurl = "https://x.example"\n',
                    encoding="utf-8")
    with pytest.raises(ConfigurationError, match="must be one of feed for Kyero"):
        load_marketplaces(Settings(marketplaces_file=path, environ={}))
