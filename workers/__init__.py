"""csms workers: stateless consumers of the OCPP event stream."""
