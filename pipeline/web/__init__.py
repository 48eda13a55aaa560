"""The web station (`mynumber serve`): review, kit dashboard, scan upload and audit console in a browser.

Importing this package does not import Flask: `credentials` (passwords, lock-out) is also used by the CLI.
"""
from __future__ import annotations


def create_app(settings, **options):
    from .app import create_app as _create
    return _create(settings, **options)
