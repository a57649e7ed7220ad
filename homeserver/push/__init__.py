"""Push rules (notification settings); pushers and push gateways are not implemented yet."""
