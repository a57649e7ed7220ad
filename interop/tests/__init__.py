"""The black-box interop scenarios; run them with ``kairan interop run``."""
