"""Doing several things at once, in one place: how much (:mod:`regfs.parallel.tuning`, sized
from the machine by :mod:`regfs.parallel.machine`) and the one fork pool
(:mod:`regfs.parallel.pool`) the scan and the digest verification share."""

from __future__ import annotations

from regfs.parallel.tuning import SERIAL as SERIAL
from regfs.parallel.tuning import Tuning as Tuning
