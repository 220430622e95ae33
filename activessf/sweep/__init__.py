"""Sweeps of ActiveSSF's selection settings (``activessf sweep``); Tune lives in ``distributed``."""
