"""End-to-end encryption support: devices, keys, device lists and to-device messages."""
