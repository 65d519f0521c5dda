"""Detectors: one module per concern. Each declares its rules, severities and examples."""

from seawall.detectors.base import Detector, FileView, Rule, all_detectors, catalogue

__all__ = ["Detector", "FileView", "Rule", "all_detectors", "catalogue"]
