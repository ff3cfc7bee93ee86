"""The package version, kept here so importing rigd needs no metadata lookup (30 ms)."""

__version__ = "0.1.0"
