"""csms workers: consumer groups over the OCPP event stream that take the decisions.

``workers.runtime`` is what every worker shares (consume, decide, publish,
checkpoint, restore); ``workers.sessions`` is the sessions worker; ``csms
worker NAME`` (``workers.cli``) runs one. Pods are stateless: their state is
rebuilt from Kafka. docs/workers.md describes them.
"""
