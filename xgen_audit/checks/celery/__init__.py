"""Rules that read the Celery configuration of the apps a stack's workers run."""
