"""The catalog: users, apps, data, jobs, replicas and hosts in SQLAlchemy.

``schema`` has every table; ``connector`` runs the database off the reactor thread; the other
modules are one component per group of tables, each returning plain dataclasses.
"""
