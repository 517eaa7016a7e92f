"""From the operators' records to the allocator's site: csms.sites.v1 and csms.stations.v1.

:func:`site_model` turns a site's record (csms.sites.v1) and the station
registry (csms.stations.v1) into the :class:`~workers.smart_charging.site.Site`
the allocator takes (docs/decisions/0020-sites-and-circuits.md):

- The site record's own limits are the grid connection, the root of the
  tree; its id is the site's id. A record of the first shape,
  ``{"site_id": "S", "max_current_a": 32, "circuits": []}``, is the whole
  site on 32 A per phase, every station of the site on it.
- A circuit without ``parent_id`` hangs on the grid connection; one without
  ``max_current_a`` has no current limit of its own (its parents' bind).
- The registry says which stations belong to the site (``site_id``) and where
  each hangs (``circuit_id``; none: on the grid connection). A circuit's
  ``station_ids``, written before stations had ``circuit_id``, still places
  a station whose record names no circuit, and brings in a listed station
  whose record names no site.
- A station's ``max_current_a`` is the hardware maximum of each of its EVSEs;
  when unknown, the most its circuits could give one EVSE bounds it. Which
  EVSEs a station has is not in the registry: the caller passes the EVSE ids
  it has seen (``evse_ids``); a station without any gets EVSE 1.

Everything here is pure. :class:`~workers.smart_charging.site.SiteError` is
raised, with the circuit or station it is about, for a tree that cannot be:
an unknown parent or circuit, a cycle, a circuit carrying a phase its parent
does not, a repeated id, a station listed on two circuits, a rotation or a
limit out of range, a site with no limit at all.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import msgspec

from contracts.envelopes import Circuit as CircuitRecord
from contracts.envelopes import SiteRecord, StationRecord
from workers.smart_charging.site import Circuit, Evse, Site, SiteError, Station

__all__ = ["site_model", "site_stations"]


def site_stations(site: SiteRecord, registry: Iterable[StationRecord]) -> list[StationRecord]:
    """The stations of ``site`` among ``registry``, by station id.

    A station belongs to the site when its record names the site, or names no
    site and one of the site's circuits lists it in ``station_ids``.
    """
    listed = {sid for circuit in site.circuits for sid in circuit.station_ids}
    members = [
        station
        for station in registry
        if station.site_id == site.site_id
        or (station.site_id is None and station.station_id in listed)
    ]
    return sorted(members, key=lambda station: station.station_id)


def site_model(
    site: SiteRecord,
    registry: Iterable[StationRecord],
    *,
    evse_ids: Mapping[str, Iterable[int]] | None = None,
) -> Site:
    """The allocator's :class:`Site` for ``site`` and the stations of ``registry`` on it.

    ``registry`` may be the whole registry: stations of other sites are left
    out (:func:`site_stations`). Raises :class:`SiteError` (see the module).
    """
    if site.max_current_a is None and site.max_power_w is None:
        raise SiteError(f"site {site.site_id}: no max_current_a or max_power_w, nothing to share")
    grid = Circuit(
        circuit_id=site.site_id,
        max_current_a=_rating(site.max_current_a),
        max_power_w=site.max_power_w,
        phases=site.phases,
        nominal_voltage_v=site.nominal_voltage_v,
        derating=site.derating,
    )
    circuits = tuple(_circuit(site.site_id, record) for record in site.circuits)
    placed = _listed_on(site)
    stations = site_stations(site, registry)
    bare = Site(
        site_id=site.site_id,
        grid_connection=grid,
        circuits=circuits,
        stations=tuple(_station(site.site_id, s, placed.get(s.station_id)) for s in stations),
    )
    paths = bare.paths()
    known_evses = evse_ids or {}
    with_evses = []
    for record, station in zip(stations, bare.stations, strict=True):
        bound = record.max_current_a
        if bound is None:
            bound = _evse_bound(paths[bare.circuit_of(station)])
        ids = sorted(set(known_evses.get(station.station_id, ()))) or [1]
        evses = tuple(Evse(evse_id=evse_id, max_current_a=bound) for evse_id in ids)
        with_evses.append(msgspec.structs.replace(station, evses=evses))
    return msgspec.structs.replace(bare, stations=tuple(with_evses))


def _rating(max_current_a: float | None) -> float:
    return math.inf if max_current_a is None else max_current_a


def _circuit(site_id: str, record: CircuitRecord) -> Circuit:
    if record.circuit_id == site_id:
        raise SiteError(f"circuit {record.circuit_id}: a circuit cannot take its site's id")
    return Circuit(
        circuit_id=record.circuit_id,
        parent_id=None if record.parent_id == site_id else record.parent_id,
        max_current_a=_rating(record.max_current_a),
        max_power_w=record.max_power_w,
        phases=record.phases,
        grid_phase=record.grid_phase,
        nominal_voltage_v=record.nominal_voltage_v,
        derating=record.derating,
    )


def _listed_on(site: SiteRecord) -> dict[str, str]:
    """Station id -> the circuit whose (deprecated) ``station_ids`` lists it."""
    placed: dict[str, str] = {}
    for circuit in site.circuits:
        for station_id in circuit.station_ids:
            other = placed.setdefault(station_id, circuit.circuit_id)
            if other != circuit.circuit_id:
                raise SiteError(
                    f"station {station_id}: listed on circuits {other} and {circuit.circuit_id}"
                )
    return placed


def _station(site_id: str, record: StationRecord, listed_on: str | None) -> Station:
    circuit_id = record.circuit_id or listed_on
    return Station(
        station_id=record.station_id,
        circuit_id=None if circuit_id == site_id else circuit_id,
        phase_rotation=record.phase_rotation,
    )


def _evse_bound(path: tuple[Circuit, ...]) -> float:
    """The most one EVSE could draw per phase under ``path``: its least current or power limit."""
    bounds = [node.current_limit_a for node in path]
    bounds += [n.max_power_w / n.nominal_voltage_v for n in path if n.max_power_w is not None]
    return min(bounds)
