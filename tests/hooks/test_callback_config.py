"""The callback secrets from the marketplaces file (R16): by the variable's name, each
mistake naming the marketplace and the key, the secret never in an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.config import CALLBACK_CHECK_DELAY, load_callback_secrets, load_marketplaces
from syndication.errors import ConfigurationError
from syndication.runtime import first_checks_ms
from syndication.settings import Settings

SECRET = "a-callback-secret-long-enough"


def settings(tmp_path: Path, text: str, **environ: str) -> Settings:
    path = tmp_path / "marketplaces.toml"
    path.write_text(text, encoding="utf-8")
    return Settings(marketplaces_file=path, outbox=tmp_path / "out", environ=environ)


def test_only_marketplaces_naming_a_secret_take_callbacks(tmp_path: Path) -> None:
    loaded = settings(tmp_path, "[marketplaces.hemnet]\ncallback_secret_env = 'HN_CB'\n"
                                "[marketplaces.blocket]\ntransport = 'file'\n", HN_CB=SECRET)
    assert load_callback_secrets(loaded) == {"hemnet": SECRET.encode()}
    assert load_callback_secrets(Settings(outbox=tmp_path)) == {}
    assert set(load_marketplaces(loaded)) >= {"hemnet", "blocket"}, "the transports still load"


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [
        ("[marketplaces.hemnet]\ncallback_secret_env = 'UNSET'\n", {},
         r"'hemnet', key 'callback_secret_env': environment variable UNSET is not set"),
        ("[marketplaces.hemnet]\ncallback_secret_env = 'SHORT'\n", {"SHORT": "abc"},
         r"'hemnet', key 'callback_secret_env': the secret in SHORT is shorter than 16"),
        ("[marketplaces.hemnet]\ncallback_secret_env = 3\n", {},
         r"'hemnet', key 'callback_secret_env': must be the name"),
        ("[defaults]\ncallback_secret_env = 'HN_CB'\n", {"HN_CB": SECRET},
         r"\[defaults\]: unknown key 'callback_secret_env'"),
    ],
)
def test_bad_callback_settings_name_the_marketplace_and_the_key(
    tmp_path: Path, text: str, environ: dict[str, str], expected: str
) -> None:
    with pytest.raises(ConfigurationError, match=expected) as caught:
        load_callback_secrets(settings(tmp_path, text, **environ))
    assert "abc" not in str(caught.value) and SECRET not in str(caught.value)


def test_a_marketplace_that_calls_back_is_first_checked_later(tmp_path: Path) -> None:
    """Polling is the fallback for a lost callback: the first check waits for the callback."""
    loaded = settings(tmp_path, "[marketplaces.hemnet]\ncallback_secret_env = 'HN_CB'\n"
                                "[marketplaces.hittahem]\ncallback_secret_env = 'HH_CB'\n"
                                "callback_check_delay = 120\n")
    configs = load_marketplaces(loaded)
    assert first_checks_ms(configs) == {"hemnet": int(CALLBACK_CHECK_DELAY * 1000),
                                        "hittahem": 120_000}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[marketplaces.hemnet]\ncallback_check_delay = 60\n",
         r"'hemnet', key 'callback_check_delay': needs callback_secret_env"),
        ("[marketplaces.hemnet]\ncallback_secret_env = 'X'\ncallback_check_delay = 0\n",
         r"'hemnet', key 'callback_check_delay': must be a positive number"),
        ("[marketplaces.hemnet]\ncallback_secret_env = 'X'\ncallback_check_delay = 'soon'\n",
         r"'hemnet', key 'callback_check_delay': must be a positive number"),
    ],
)
def test_bad_check_delays_name_the_marketplace_and_the_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(ConfigurationError, match=expected):
        load_marketplaces(settings(tmp_path, text))
