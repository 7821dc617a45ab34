"""Database access: one async engine, one dialect seam, one schema, one migration chain."""
