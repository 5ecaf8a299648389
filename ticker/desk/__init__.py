"""The editors' desk: accounts, console sign-in (password and OpenID Connect), the live
board's event stream, the desk's OpenAPI paths and the ``ticker users`` command.

The desk sits over the write side: it may import ``ticker.intake`` (keys, the items API,
the desk feed), never the read side; nothing below the app imports the desk.
"""
