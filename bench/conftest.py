"""Benchmarks run on one core: pin the process so numbers mean 'one core'."""

import os

if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
