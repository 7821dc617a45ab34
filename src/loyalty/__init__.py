"""Loyalty points and rewards engine."""

__version__ = "0.1.0"
