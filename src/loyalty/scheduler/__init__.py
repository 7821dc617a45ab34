"""The scheduler: timed jobs (gifts, expiry, vesting, tier review, hold timeouts)."""
