"""Login events, their geolocation, and impossible-travel detection.

The detection core is pure (no I/O, no clock): ``timeline`` (events, their total order,
neighbours, history), ``geo_math`` (distance, Δt, speed), ``detect`` (the graded, explained
verdict on one journey, with false-positive controls), ``grading`` (which journey judges a
login: the one from the last successful login) and ``superman_view`` (the Superman seed's
flags and truncated speeds). ``service`` and ``ingest`` store and grade events.
"""
