"""A tiny deterministic app for the grid's own demo and tests: count primes in a range."""
