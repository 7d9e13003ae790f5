"""Whisper model folders: their formats, conversions between them, versions and the atomic swap."""
