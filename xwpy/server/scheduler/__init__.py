"""The scheduler: pure decisions (``quorum``, ``policy``), the in-memory ``engine`` that applies them,
and the ``dispatcher`` that persists each step in the catalog before anyone hears of it."""
