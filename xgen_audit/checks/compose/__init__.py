"""Rules that read the compose model."""
