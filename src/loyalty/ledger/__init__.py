"""The points ledger: double-entry, append-only, with lots, pending points and refunds."""
