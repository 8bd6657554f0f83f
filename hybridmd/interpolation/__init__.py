"""Time super-resolution of phase space: reconstruct the n-1 fine frames between coarse frames.

Data flow: a fine ``Trajectory`` -> ``windows.make_windows`` (coarse context frames and, for
training and scoring, the fine target frames) -> an ``Interpolator`` (classical or neural) ->
positions and velocities of all n+1 frames of each window -> ``metrics``.
"""
