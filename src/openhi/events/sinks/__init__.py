"""Event sinks: where ``openhi.events.delivery`` sends published events (``port.py`` is what they implement)."""
