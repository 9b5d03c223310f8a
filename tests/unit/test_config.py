"""Site configuration: what init writes loads back; mistakes name the key."""

import pytest

from xwpy import config
from xwpy.site import SiteExists, init_site


def test_init_writes_a_loadable_site(tmp_path):
    cfg, token = init_site(tmp_path / "s", port=0, scheduler={"heartbeat_seconds": 0.5})
    loaded = config.load(tmp_path / "s")
    assert loaded == cfg
    assert loaded.scheduler.heartbeat_seconds == 0.5
    assert (tmp_path / "s" / "admin.token").read_text().strip() == token
    for secret in ("admin.token", "ca.key", "server.key"):
        assert (tmp_path / "s" / secret).stat().st_mode & 0o077 == 0


def test_init_never_overwrites(tmp_path):
    init_site(tmp_path / "s")
    before = (tmp_path / "s" / "ca.pem").read_bytes()
    with pytest.raises(SiteExists):
        init_site(tmp_path / "s")
    assert (tmp_path / "s" / "ca.pem").read_bytes() == before


@pytest.mark.parametrize(
    "text,needle",
    [
        ("[coordinator]\nprot = 1\n", "unknown key 'prot'"),
        ("[coordinator]\nport = 'x'\n", "port must be of type int"),
        ("[scheduler]\nheartbeat_seconds = true\n", "heartbeat_seconds"),
        ("[catalog]\nbusy_timeout_seconds = 0\n", "busy_timeout_seconds must be in"),
        ("[nope]\n", "unknown section [nope]"),
        ("[coordinator\n", "xwpy.toml"),
    ],
)
def test_mistakes_are_named(tmp_path, text, needle):
    (tmp_path / "xwpy.toml").write_text(text)
    with pytest.raises(config.ConfigError) as e:
        config.load(tmp_path)
    assert needle in str(e.value)


def test_missing_site(tmp_path):
    with pytest.raises(config.ConfigError, match="xwpy init"):
        config.load(tmp_path / "none")
