"""Rule implementations; importing this package registers every rule."""

from xgen_audit.checks.compose import devonly, files, redis, startup, workers  # noqa: F401
from xgen_audit.checks.celery import concurrency, config, delivery, observability, startup as celery_startup  # noqa: F401
