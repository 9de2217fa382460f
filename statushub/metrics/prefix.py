"""
The start of every metric's name (a leaf of the metrics package).
"""

PREFIX = "statushub"
