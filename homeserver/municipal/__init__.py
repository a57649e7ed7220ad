"""Kairan's municipal features, one package each (consortium, directory, rollcall, ...).

Each is a package with ``register(registry, context)`` (see spec/extensions.md), listed by
name in homeserver/extensions/catalogue.py and enabled in a node's kairan.yaml.  Nothing
of the core imports this package (the layering test checks it): the node loads features by
their import path.
"""
