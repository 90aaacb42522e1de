"""The project's units: bytes, seconds and USD per hour internally; these constants convert for display."""

GIB = float(1 << 30)  # bytes in a GiB
GB = 1e9  # bytes in a (decimal) GB
