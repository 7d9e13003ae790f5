"""Flask application: app factory, blueprints and the per-request database handle."""
