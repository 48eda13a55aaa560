"""`mynumber serve [--host 127.0.0.1] [--port 8080]`: the web station (review, kit dashboard, scan upload,
audit console) for the mailroom, handlers, managers and auditors."""
from __future__ import annotations

import ipaddress

from .. import config, db


def register(sub) -> None:
    p = sub.add_parser("serve", help="start the web station (browser UI) for review, dashboard, upload and audit")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    p.set_defaults(handler=run)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def run(args) -> int:
    from ..web import create_app
    from ..web.server import make_station_server
    settings = config.load()
    db.require_schema(settings.db_url)
    app = create_app(settings)
    server = make_station_server(app, args.host, args.port)
    station = app.extensions["mynumber"]
    print(f"web station for {settings.home} on http://{args.host}:{server.port}/ (Ctrl+C stops it)", flush=True)
    if station.secure_cookies and not _loopback(args.host):
        print("login cookies are Secure: browsers on other machines keep a login only over HTTPS, so put a TLS "
              "reverse proxy in front of this port", flush=True)
    elif not station.secure_cookies and not _loopback(args.host):
        print(f"warning: [web] secure_cookies = false while listening on {args.host}: logins travel unencrypted; "
              "put HTTPS in front and set it back to true", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
