"""Loyalty points and rewards engine."""
