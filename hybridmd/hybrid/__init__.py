"""The hybrid loop of `hybridmd run`: segments, the forecaster, monitors, the driver."""
