"""Numba kernels: arrays in, arrays out, ``cache=True``, no objects, no I/O.

Every recursion of the engines runs here, per sample or per frame, reading
its state arrays and writing them back (like ``scipy.signal.sosfilt``'s
``zi``/``zf``); that is what makes the output independent of block size.
"""
