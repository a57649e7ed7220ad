"""Push notifications: push rules (``rules``; evaluated by ``evaluator``, ``conditions``
and ``globs``), the push actions recorded with each new event (``actions``, which /sync's
notification counts read), pushers (``pushers``, the ``/pushers`` API) and sending to
their push gateways (``sender`` and ``gateway``); ``wiring`` builds them for a node."""
