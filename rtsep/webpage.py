"""The browser client's files (``rtsep/web/``) and the WebSocket ``Origin`` policy of ``rtsep serve``.

``GET /`` answers ``web/index.html``; ``GET /web/NAME`` answers the other
files of the page (script, AudioWorklet, style). Nothing else of the package
is reachable: the files are read once into a fixed table, so no request path
is ever joined to a file-system path.

A browser sends an ``Origin`` header with every WebSocket upgrade; any page
on the web could otherwise open a stream to a server on this machine and use
its microphones' separation. :func:`origin_allowed` accepts the page's own
origin (same host and port as the request's ``Host``), clients that send no
``Origin`` (command-line and library clients), and the origins given with
``--allow-origin``.
"""

from __future__ import annotations

from importlib import resources
from urllib.parse import urlsplit

from .errors import ConfigError

#: Content types of the page's files, by suffix.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}

#: Sent with every file of the page: no framing, only this server's own scripts and sockets.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; "
                                "media-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_FILES: dict[str, tuple[str, str]] | None = None


def _files() -> dict[str, tuple[str, str]]:
    """URL path → (text, content type), read once from the package data."""
    global _FILES
    if _FILES is None:
        table = {}
        for item in resources.files("rtsep").joinpath("web").iterdir():
            suffix = "." + item.name.rsplit(".", 1)[-1]
            if item.is_file() and suffix in CONTENT_TYPES:
                table["/web/" + item.name] = (item.read_text(encoding="utf-8"), CONTENT_TYPES[suffix])
        if "/web/index.html" in table:
            table["/"] = table["/web/index.html"]
        _FILES = table
    return _FILES


def page_file(path: str) -> tuple[str, str] | None:
    """The page's file at a URL path.

    Parameters
    ----------
    path : str
        Request path without the query string (``/``, ``/web/app.js``, …).

    Returns
    -------
    (str, str) or None
        The file's text and content type; None when the path is not a file of the page.
    """
    return _files().get(path)


def _host_port(netloc: str, scheme: str | None) -> tuple[str, int | None]:
    """Lower-case host and port of ``host[:port]`` (port None when absent and the scheme unknown)."""
    parts = urlsplit("//" + netloc)
    try:
        port = parts.port
    except ValueError:
        return "", None
    if port is None and scheme is not None:
        port = _DEFAULT_PORTS.get(scheme)
    return (parts.hostname or "").lower(), port


def normalize_origin(origin: str) -> str:
    """The canonical form of an origin given with ``--allow-origin``.

    Parameters
    ----------
    origin : str
        ``scheme://host[:port]`` (no path), or ``null`` (pages opened from
        ``file://`` or sandboxed frames).

    Returns
    -------
    str
        Lower-case, default port dropped, e.g. ``https://example.org``.

    Raises
    ------
    ConfigError
        When it is not of that form.
    """
    text = origin.strip()
    if text == "null":
        return text
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.fragment or parts.username:
        raise ConfigError(f"--allow-origin {origin!r} is not an origin: give scheme://host[:port], "
                          "e.g. https://app.example.org or http://localhost:3000")
    scheme = parts.scheme.lower()
    host, port = _host_port(parts.netloc, scheme)
    if port is None:
        raise ConfigError(f"--allow-origin {origin!r} has a bad port; give scheme://host[:port]")
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + ("" if port == _DEFAULT_PORTS[scheme] else f":{port}")


def origin_allowed(origin: str | None, host: str | None, allowed: tuple[str, ...] = ()) -> bool:
    """Whether a WebSocket upgrade with this ``Origin`` may proceed.

    Parameters
    ----------
    origin : str or None
        The request's ``Origin`` header; None when absent (not a browser).
    host : str or None
        The request's ``Host`` header (``host[:port]``), i.e. where the page was loaded from.
    allowed : tuple of str
        Extra origins, each as returned by :func:`normalize_origin`.

    Returns
    -------
    bool
        True for no ``Origin``, for the same host and port as ``Host``, and for ``allowed`` origins.
    """
    if origin is None:
        return True
    try:
        canonical = normalize_origin(origin)
    except ConfigError:
        return False
    if canonical in allowed:
        return True
    if canonical == "null" or not host:
        return False
    scheme = urlsplit(canonical).scheme
    o_host, o_port = _host_port(urlsplit(canonical).netloc, scheme)
    h_host, h_port = _host_port(host, None)
    return o_host == h_host and (h_port == o_port or (h_port is None and o_port == _DEFAULT_PORTS[scheme]))
