"""Tracking: the database models, the service that performs every state change, and the audit log."""
