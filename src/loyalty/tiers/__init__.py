"""Membership tiers: a ladder reached by spend, points or orders over a window."""
