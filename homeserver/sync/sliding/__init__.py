"""Simplified Sliding Sync (MSC4186), as Synapse serves it (Element X speaks nothing else).

:mod:`.request` reads and checks a request body; :mod:`.connections` keeps what each
connection (user, device, ``conn_id``) was sent as of each ``pos``; :mod:`.room_list`
picks and orders a user's rooms into the requested lists; :mod:`.room_data` reads each
room's entry; :mod:`.extensions` the to-device, e2ee, account data, receipts and typing
extensions; :mod:`.service` puts them together and long-polls.
"""
