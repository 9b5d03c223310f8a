"""xwpy: a Python desktop grid (XtremWeb lineage) with a blockchain oracle (iExec lineage)."""

__version__ = "0.1.0"
