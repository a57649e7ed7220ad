"""The node's side of federation: storage for keys and queues, the inbound event pipeline,
joins and invites across servers, and the outbound hooks."""
