"""Site configuration: what init writes loads back; mistakes name the key."""

import dataclasses
import tomllib
from pathlib import Path

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
    from xwpy.server.catalog import revision
    from xwpy.server.catalog.connector import make_engine

    engine = make_engine(cfg.database_url)
    assert revision.state(engine).current == revision.head()  # the catalog is born at the newest migration
    engine.dispose()
    with pytest.raises(SiteExists, match="already holds an xwpy catalog"):  # nor does init take over one
        init_site(tmp_path / "t", database=cfg.database_url)


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


SITE_EXAMPLES = sorted(p for p in (Path(__file__).parents[2] / "conf").glob("*.toml")
                       if p.name != "worker-prefs.toml")  # a volunteer's preferences: tests/unit/test_conf_units.py


@pytest.mark.parametrize("example", SITE_EXAMPLES, ids=lambda p: p.name)
def test_the_examples_in_conf_are_valid_and_init_starts_from_them(example, tmp_path):
    from xwpy import config

    text = example.read_text()
    base = config.parse(text, tmp_path / "s", str(example))
    # every value written in the example is the value the site gets (no key silently ignored)
    raw = tomllib.loads(text)
    for section, values in raw.items():
        if section == "site":
            continue
        for key, value in values.items():
            assert getattr(getattr(base, config._FIELDS.get(section, section)), key) == value, f"{example.name} [{section}] {key}"
    if base.catalog.url.startswith("postgresql"):
        base = dataclasses.replace(base, catalog=dataclasses.replace(base.catalog, url="sqlite:///catalog.sqlite"))
    cfg, _ = init_site(tmp_path / "s", base=base, port=0)
    assert cfg.coordinator.port == 0  # the argument overrides the example
    assert config.load(cfg.dir) == cfg
    assert cfg.name == raw["site"]["name"]


def test_init_refuses_a_bad_template(tmp_path):
    from click.testing import CliRunner

    from xwpy.client.cli import cli
    from xwpy.client.commands import register

    register(cli)
    bad = tmp_path / "bad.toml"
    bad.write_text("[scheduler]\nheartbeat = 3\n")
    r = CliRunner().invoke(cli, ["init", str(tmp_path / "s"), "--config", str(bad)])
    assert r.exit_code == 1 and "unknown key 'heartbeat'" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "s").exists()


def test_a_missing_catalog_driver_says_what_to_install_and_init_leaves_nothing(tmp_path, monkeypatch):
    """A PostgreSQL catalog without psycopg (a plain install, or the demo's venv): one line naming
    the extra, no password shown, and no half-made site that the next `xwpy init` would refuse."""
    import sys

    from xwpy.server.catalog.connector import CatalogDriverMissing, make_engine
    from xwpy.server.main import schema_problem

    url = "postgresql+psycopg://xwpy:s3cret@127.0.0.1:1/xwpy"
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg fails as if not installed
    with pytest.raises(CatalogDriverMissing, match=r"pip install 'xwpy\[postgres\]'"):
        make_engine(url)
    problem = schema_problem(url, tmp_path)  # the coordinator's one line before it starts
    assert "xwpy[postgres]" in problem and "s3cret" not in problem
    with pytest.raises(CatalogDriverMissing):
        init_site(tmp_path / "s", database=url)
    assert not (tmp_path / "s").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("kept")
    with pytest.raises(CatalogDriverMissing):
        init_site(tmp_path / "mine", database=url)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    monkeypatch.delitem(sys.modules, "psycopg")
    init_site(tmp_path / "mine")  # and a second try is not refused as "already holds an xwpy site"


def test_shown_url_hides_the_password():
    from xwpy.server.catalog.connector import shown_url

    assert shown_url("postgresql+psycopg://xwpy:s3cret@db:5432/xwpy") == "postgresql+psycopg://xwpy:***@db:5432/xwpy"
    assert shown_url("sqlite:////tmp/x/catalog.sqlite") == "sqlite:////tmp/x/catalog.sqlite"


def test_blobs_section_local_by_default_and_s3_checked(tmp_path):
    from xwpy import config

    site = config.parse("", tmp_path / "s", "x")
    assert site.blob_store.backend == "local"
    assert "[blobs]" not in config.render(site)  # a new site's file says nothing of it
    s3 = config.parse('[blobs]\nbackend = "s3"\nendpoint = "http://127.0.0.1:8333"\ncredentials_file = "s3.toml"\n',
                      tmp_path / "s", "x")
    assert (s3.blob_store.backend, s3.blob_store.bucket) == ("s3", "xwpy-blobs")
    assert "[blobs]" in config.render(s3) and "secret" not in config.render(s3)
    for bad in ('backend = "nfs"', 'backend = "s3"', 'backend = "s3"\nendpoint = "seaweed:8333"',
                'backend = "s3"\nendpoint = "http://x"\nmin_url_seconds = 10.0\nmax_url_seconds = 5.0',
                'backend = "s3"\nendpoint = "http://x"\ncache_bytes = -1'):
        with pytest.raises(config.ConfigError, match=r"\[blobs\]"):
            config.parse("[blobs]\n" + bad + "\n", tmp_path / "s", "x")
