"""CLI command groups. Each module exposes ``register(app)``; commands are thin: parse, call ``run``, print."""
