"""The CLI's commands, one module per subject, each imported only when one of its commands runs.

``xwpy vanity local`` then starts without the coordinator's code, twisted or cryptography (a
search's first key comes a few hundred milliseconds sooner); ``xwpy -h`` loads them all.
"""

from __future__ import annotations

import importlib

import click

# The module that defines each top-level command. tests/unit/test_cli_conventions.py checks it
# against what the modules register, so a command missing here cannot go unnoticed.
MODULES = {
    "coordinator": "daemons", "demo": "daemons", "init": "daemons", "worker": "daemons",
    "cert": "site", "doctor": "site",
    "db": "db",
    "hosts": "admin", "token": "admin", "users": "admin", "whoami": "admin",
    "app": "catalog", "data": "catalog", "image": "catalog",
    "cancel": "jobs", "result": "jobs", "status": "jobs", "submit": "jobs", "why": "jobs",
    "delete": "cleanup",
    "chain": "chain",
    "vanity": "xwpy.apps.vanitygen.cli",
}
OPTIONAL = {"xwpy.apps.vanitygen.cli"}  # an app the CLI may be installed without


def _qualified(module: str) -> str:
    return module if "." in module else f"{__name__}.{module}"


def load(cli: click.Group, module: str) -> None:
    """Add one module's commands to ``cli`` (once), with the connection options."""
    from xwpy.client.cli import add_connection_options

    loaded = cli.__dict__.setdefault("_xwpy_loaded", set())
    if module in loaded:
        return
    loaded.add(module)
    try:
        mod = importlib.import_module(_qualified(module))
    except ImportError:
        if module in OPTIONAL:
            return
        raise
    before = set(cli.commands)
    mod.register(cli)
    for name in set(cli.commands) - before:
        add_connection_options(cli.commands[name])


def register(cli: click.Group) -> None:
    """All the commands at once (help listings, tests)."""
    for module in dict.fromkeys(MODULES.values()):
        load(cli, module)
