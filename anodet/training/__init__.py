"""Training the detector family into a model store, in the foreground or as background jobs."""
