"""Typer sub-commands of `amogate`, one module per group."""
