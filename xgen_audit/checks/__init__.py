"""Rule implementations; importing this package registers every rule."""

from xgen_audit.checks.compose import devonly, files, redis, startup, workers  # noqa: F401
