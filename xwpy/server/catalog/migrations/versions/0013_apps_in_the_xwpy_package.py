"""The demo apps moved into the xwpy package (apps -> xwpy.apps): apps registered with ``-m apps.NAME...``
(the vanity search, the oracle's apps) now run ``-m xwpy.apps.NAME...``."""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"

apps = sa.table("apps", sa.column("id", sa.Integer), sa.column("command", sa.JSON))


def moved(command: list[str]) -> list[str]:
    return [f"xwpy.{arg}" if i and command[i - 1] == "-m" and arg.startswith(("apps.vanitygen.", "apps.hashchain."))
            else arg for i, arg in enumerate(command)]


def upgrade() -> None:
    conn = op.get_bind()
    for app_id, command in conn.execute(sa.select(apps.c.id, apps.c.command)).all():
        if moved(command) != command:
            conn.execute(apps.update().where(apps.c.id == app_id).values(command=moved(command)))
