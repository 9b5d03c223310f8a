"""Handlers: one per hub app the oracle serves (hub app name -> handler).

``base`` says what a handler is; each other module is one app. The vanity handler needs the
vanitygen app (``xwpy/apps/vanitygen``); without it the oracle serves the others and records requests
for vanitygen as failed, naming the reason.
"""

from __future__ import annotations

from xwpy.oracle.handlers.base import Handler


def default_handlers() -> dict[str, Handler]:
    from xwpy.oracle.handlers.hashchain import HashChainHandler

    handlers: list[Handler] = [HashChainHandler()]
    try:
        from xwpy.oracle.handlers.vanity import VanityHandler
    except ImportError:
        pass
    else:
        handlers.append(VanityHandler())
    return {h.app: h for h in handlers}
