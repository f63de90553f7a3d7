"""Infrastructure the use cases stand on: the database (``db``), the durable job queue
(``queue``), business time (``clock``), step row locks (``locks``), the settings
(``settings``), the one retry backoff (``backoff``) and the audit writer (``audit``).

Nothing here knows a domain rule; every domain package may import from here.
"""
