"""Oracles: independent implementations that Kairan's engine is cross-checked against."""
