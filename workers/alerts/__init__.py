"""The alerts worker: rules that raise and clear alerts (csms.alerts.v1), and their notification."""
