"""APIs of the seed systems that do not fit the native API, built on the same engine."""
