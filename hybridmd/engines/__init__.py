"""Simulation engines that advance a molecule in time: ASE (embedded) and, later, i-PI."""
