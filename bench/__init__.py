"""pycdi benchmarks (`make bench`): each prints its figures; results go to bench/results.json."""
