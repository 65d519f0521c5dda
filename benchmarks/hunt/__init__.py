"""Helpers of ``benchmarks/hunt_vs_peers.py`` (issue 5): inputs, peers, seawall runs, scoring.

Kept out of the product: Node, the peers and the input builders exist only for the benchmark.
"""
