"""The web dashboard's files, served by the coordinator at ``/`` (the page) and ``/ui/`` (its
script, style and icon), all from this package: nothing comes from another origin, at build time
or at run time. The page signs in with the user's token, kept in the tab's sessionStorage and sent
as a bearer header to the JSON API (never in a URL, so never in a log or a history); it reads only
what the API lets that token read.

The policy below forbids inline script and style, eval, and any other origin."""

from __future__ import annotations

from importlib import resources

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-cache"),  # revalidated: a new version of xwpy serves its own page
)
FILES = {  # URL path: (file in this package, content type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/ui/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/ui/plot.js": ("plot.js", "text/javascript; charset=utf-8"),
    "/ui/style.css": ("style.css", "text/css; charset=utf-8"),
    "/ui/icon.svg": ("icon.svg", "image/svg+xml"),
}


def pages() -> dict[str, tuple[bytes, str]]:
    """Each URL path's body and content type (read once, when the coordinator starts)."""
    here = resources.files(__name__)
    return {path: (here.joinpath(name).read_bytes(), ctype) for path, (name, ctype) in FILES.items()}


__all__ = ["CSP", "FILES", "HEADERS", "pages"]
