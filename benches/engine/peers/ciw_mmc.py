"""The M/M/c model of the peer benchmark in Ciw; prints one JSON line.

Usage: ciw_mmc.py lambda mu c customers seed
"""
import json
import sys
import time

import ciw


def main():
    lam, mu, c, n, seed = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=lam)],
        service_distributions=[ciw.dists.Exponential(rate=mu)],
        number_of_servers=[c],
    )
    ciw.seed(seed)
    sim = ciw.Simulation(network)
    start = time.perf_counter()
    sim.simulate_until_max_customers(n, method="Finish")
    wall = time.perf_counter() - start
    waits = [r.waiting_time for r in sim.get_all_records()]
    print(json.dumps({
        "simulator": "Ciw",
        "customers": len(waits),
        "requests_simulated": n,
        "wall_s": wall,
        "requests_per_s": n / wall,
        "mean_wait": sum(waits) / len(waits),
    }))


if __name__ == "__main__":
    main()
