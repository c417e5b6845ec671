"""xgen-audit: a linter for Docker Compose + Celery + Redis deployments."""

__version__ = "0.1.0"
