"""Alembic's entry point: runs the migrations on the connection ``revision`` hands it (no ini file,
no URL of its own), inside that connection's transaction."""

from alembic import context

from xwpy.server.catalog import schema

config = context.config
context.configure(
    connection=config.attributes["connection"],
    target_metadata=schema.metadata,
    on_version_apply=config.attributes.get("on_version_apply"),
)
with context.begin_transaction():
    context.run_migrations()
