"""Login events, their geolocation, and impossible-travel detection.

The detection core is pure (no I/O, no clock): ``timeline`` (events, their total order,
neighbours, history), ``geo_math`` (distance, Δt, speed), ``detect`` (Globeguard's graded,
explained verdict with false-positive controls) and ``superman_view`` (the Superman seed's
flags and truncated speeds).
"""
