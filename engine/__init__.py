"""The route engine: the product's use cases, each one transaction of our database.

Packages by domain — ``routes`` (forming routes and moving their steps), ``answers`` (agencies'
answers stored before they are acknowledged), ``agencies`` (participants, endpoints, secrets),
``escalations`` (timers and the escalation ladder), ``supervisor`` (the supervisor's actions),
``notifications`` (the outbox), ``persons`` (applications, consent, ИПРА, bulk registration,
reads of a person's data), ``staff`` (staff users and their tokens) — stand on ``infra``
(database, queue, clock, locks, settings, backoff, audit writer); ``runtime`` (worker,
sweeper, job handler registry) runs them. docs/architecture.md draws the map.
"""
