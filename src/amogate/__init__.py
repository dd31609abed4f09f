"""amogate: a self-hosted gateway between lead sources and amoCRM / Kommo."""

__version__ = "0.1.0"
