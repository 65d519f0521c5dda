"""Model weights: safe readers, canonical hashes, fingerprints and lineage.

``seawall model inspect|fingerprint|compare`` live in ``commands``; the readers never
unpickle, never follow external files and read one tensor at a time.
"""
