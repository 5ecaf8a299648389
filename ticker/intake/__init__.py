"""The write side: the intake API, editor keys, the item schema, accepting changes."""
