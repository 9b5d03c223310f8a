"""The catalog's schema migrations (Alembic), numbered in ``versions/``: from the first catalog that
landed (0001) to today's ``schema.py``. ``xwpy.server.catalog.revision`` runs them."""
