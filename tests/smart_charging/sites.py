"""Small sites for the smart-charging tests: stations with one EVSE, EVs on them."""

from __future__ import annotations

from collections.abc import Iterable

from workers.smart_charging.site import Circuit, Evse, Site, Station


def one_circuit_site(
    max_current_a: float = 32.0,
    stations: int = 6,
    *,
    rotations: Iterable[str] = ("RST",),
    **grid: float,
) -> Site:
    """A site whose stations (CP0, CP1, ...; one 32 A EVSE each) hang on the grid connection."""
    rotation = list(rotations)
    return Site(
        site_id="S",
        grid_connection=Circuit(circuit_id="grid", max_current_a=max_current_a, **grid),
        stations=tuple(
            Station(
                station_id=f"CP{i}",
                phase_rotation=rotation[i % len(rotation)],
                evses=(Evse(evse_id=1, max_current_a=32.0),),
            )
            for i in range(stations)
        ),
    )
