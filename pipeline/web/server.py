"""The HTTP server of `mynumber serve` (Werkzeug, threaded), with request lines masked before they are logged.

The station's own URLs never carry a number, but anyone can type one into the address bar; the access log
then shows the digits replaced."""
from __future__ import annotations

import re

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.urls import uri_to_iri

_DIGIT_RUN = re.compile(r"\d(?:[\d\-\s]|%20|%2D){10,}\d", re.IGNORECASE)


def mask_line(text: str) -> str:
    """Digit runs that could be a number (12 or more digits, separators allowed) replaced by '[masked]'."""
    def replace(match: re.Match) -> str:
        digits = sum(c.isdigit() for c in re.sub(r"%[0-9a-fA-F]{2}", "", match.group(0)))
        return "[masked]" if digits >= 12 else match.group(0)
    return _DIGIT_RUN.sub(replace, text)


class MaskingRequestHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        try:
            line = f"{self.command} {uri_to_iri(self.path)} {self.request_version}"   # %-escapes decoded
        except AttributeError:          # no path: the request line itself was bad
            line = self.requestline
        self.log("info", '"%s" %s %s', mask_line(line.translate(self._control_char_table)), code, size)

    def log_error(self, format: str, *args) -> None:
        super().log_error("%s", mask_line(format % args))


def make_station_server(app, host: str, port: int) -> BaseWSGIServer:
    return make_server(host, port, app, threaded=True, request_handler=MaskingRequestHandler)
