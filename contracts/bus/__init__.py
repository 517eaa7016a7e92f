"""Kafka plumbing shared by every csms process: clients, the embedded broker, admin, tail."""
