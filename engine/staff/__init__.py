"""Staff users (coordinators, supervisors, administrators) and their tokens: creation,
lookup, expiry, revocation and rotation (``accounts``)."""
