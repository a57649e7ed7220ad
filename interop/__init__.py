"""Interoperability tooling: running reference implementations (Synapse) beside Kairan."""
