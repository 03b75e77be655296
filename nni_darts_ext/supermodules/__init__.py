"""Differentiable mixed operations that strategies install into a supernet through NNI's mutation hooks."""
