"""The notification outbox: queue messages to people in the caller's transaction and deliver
them later through their channels (``outbox``)."""
