"""The Client-Server API: one routes module per area; handlers parse, call a service, render."""
