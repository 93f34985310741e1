"""catalog-service: the API catalog of a city's back-end landscape."""

__version__ = "0.1.0"
