"""The status worker: one live status record per station (csms.station-status.v1).

``facts`` reads what an event says about a station, for every OCPP version;
the alerts worker reads the same facts.
"""
