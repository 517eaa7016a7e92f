"""The csms gateway: terminates OCPP websockets and bridges them to Kafka."""
