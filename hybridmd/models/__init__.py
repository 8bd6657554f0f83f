"""Neural interpolators: torch networks behind one contract (see ``base.InterpolatorNet``)."""
