"""fleetlog.costs: what a charge cost — TeslaMate's rules plus time-of-use tariffs.

Public API::

    calculator = ChargeCostCalculator(settings.tz)     # the logbook's hook at charge close
    calculator.cost(conn, car_id, aggregates, geofence_id)  # float | None

    set_tariff(conn, geofence_id, Tariff("EUR", windows_of(["mon-fri 22:00-06:00 0.21"]),
                                         default_price=Decimal("0.34")))
    changes = recompute_costs(conn, geofence_id=geofence_id, apply=False)  # the diff
    set_manual_cost(conn, process_id, "absolute", Decimal("12.50"))

Modules: :mod:`~fleetlog.costs.tariff` (windows, seasons, prices over time — pure),
:mod:`~fleetlog.costs.pricing` (the cost rules — pure), :mod:`~fleetlog.costs.tariffs`
(tariffs stored), :mod:`~fleetlog.costs.charge_cost` (costs stored).
"""

from fleetlog.costs.charge_cost import (
    ChargeCostCalculator,
    ChargeCostError,
    CostChange,
    billing_at,
    clear_manual_cost,
    cost_of_process,
    recompute_costs,
    set_manual_cost,
)
from fleetlog.costs.pricing import Billing, ChargeFacts, charge_cost, manual_cost
from fleetlog.costs.tariff import (
    Season,
    Tariff,
    TariffError,
    Window,
    format_window,
    parse_window,
    price_spans,
    windows_of,
)
from fleetlog.costs.tariffs import delete_tariff, get_tariff, set_tariff

__all__ = [
    "Billing",
    "ChargeCostCalculator",
    "ChargeCostError",
    "ChargeFacts",
    "CostChange",
    "Season",
    "Tariff",
    "TariffError",
    "Window",
    "billing_at",
    "charge_cost",
    "clear_manual_cost",
    "cost_of_process",
    "delete_tariff",
    "format_window",
    "get_tariff",
    "manual_cost",
    "parse_window",
    "price_spans",
    "recompute_costs",
    "set_manual_cost",
    "set_tariff",
    "windows_of",
]
