"""Simulation engines that advance a molecule in time: ASE (embedded) and i-PI (socket)."""
