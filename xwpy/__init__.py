"""xwpy: a Python desktop grid (XtremWeb lineage) with a blockchain oracle (iExec lineage)."""

__version__ = "0.1.0"

_API = ("Grid", "JobFailed", "JobFuture", "JobNotFound")


def __getattr__(name: str):
    """``from xwpy import Grid``: the Python API, imported only when asked for (a worker never is)."""
    if name in _API:
        from xwpy.client import futures

        return getattr(futures, name)
    raise AttributeError(f"module 'xwpy' has no attribute {name!r}")
