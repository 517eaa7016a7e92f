"""Kafka plumbing shared by every csms process: clients, a local Apache Kafka, admin, tail."""
