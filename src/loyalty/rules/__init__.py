"""YAML programme format, compiler and pure evaluation engine."""
