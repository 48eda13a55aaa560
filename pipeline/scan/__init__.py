"""Scan intake: page sources, QR tags, alignment, field reading, the stage list, the review queue."""
