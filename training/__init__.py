"""The web side of S2S Training: the Flask app (src/) and its pages (www/)."""
