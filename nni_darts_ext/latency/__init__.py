"""LA-DARTS's latency knowledge: timing networks on a device, the architecture encoding, the
predictors trained on measured samples, and the file cache that makes measuring a one-off."""
