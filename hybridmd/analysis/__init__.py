"""Observables that judge a reconstructed trajectory against its reference, and a report of them.

- :mod:`~hybridmd.analysis.observables`: vibrational density of states, pair-distance and speed
  distributions, internal coordinates, free-energy surfaces, errors over time (numpy/scipy only);
- :mod:`~hybridmd.analysis.rdf`: partial g(r) and density of a periodic trajectory;
- :mod:`~hybridmd.analysis.compare`: two independent runs scored by their distributions;
- :mod:`~hybridmd.analysis.report`: :func:`~hybridmd.analysis.report.analyze` writes the figures,
  ``scores.json`` and ``report.md`` (``hybridmd analyze`` on the command line), with
  :mod:`~hybridmd.analysis.rdf_report` its periodic part.
"""
