"""progrestore: progressive image restoration as text-conditioned video generation."""

__version__ = "0.1.0"
