"""CLI command groups, one module each; see pipeline/cli.py."""
