"""`autointerp pages --serve`: the latent pages' folder over HTTP on 127.0.0.1 only (the pages also open from disk)."""

from __future__ import annotations

import functools
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def pages_server(pages_dir: Path, port: int = 8765) -> ThreadingHTTPServer:
    """A server for `pages_dir` bound to 127.0.0.1 (port 0 picks a free one); call serve_forever() on it."""
    handler = functools.partial(_QuietHandler, directory=str(pages_dir))
    return ThreadingHTTPServer(("127.0.0.1", port), handler)
