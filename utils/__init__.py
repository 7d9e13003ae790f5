"""Shared pieces with no web or training code: configuration, database, audio."""
