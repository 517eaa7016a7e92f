"""The shared language of csms: OCPP payload types, OCPP-J frames, Kafka envelopes and topics.

Depends on nothing else in the repository; the gateway and the workers import it,
never each other.
"""
