"""The CLI's commands, one module per subject."""


def register(cli) -> None:
    from xwpy.client.commands import admin, catalog, chain, daemons, db, jobs, site

    for module in (daemons, site, db, admin, catalog, jobs, chain):
        module.register(cli)
    try:
        from xwpy.apps.vanitygen.cli import vanity
    except ImportError:  # the vanity app is optional
        return
    cli.add_command(vanity)
