"""The csms load-test harness: simulated charging-station fleets against any OCPP endpoint."""
