"""The M/M/c model of the peer benchmark in SimPy; prints one JSON line.

Usage: simpy_mmc.py lambda mu c customers seed
"""
import json
import random
import sys
import time

import simpy


def main():
    lam, mu, c, n, seed = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    rng = random.Random(seed)
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=c)
    stats = {"waits": 0.0, "served": 0}

    def customer():
        arrived = env.now
        with server.request() as req:
            yield req
            stats["waits"] += env.now - arrived
            stats["served"] += 1
            yield env.timeout(rng.expovariate(mu))

    def source():
        for _ in range(n):
            env.process(customer())
            yield env.timeout(rng.expovariate(lam))

    env.process(source())
    start = time.perf_counter()
    env.run()
    wall = time.perf_counter() - start
    print(json.dumps({
        "simulator": "SimPy",
        "customers": stats["served"],
        "requests_simulated": n,
        "wall_s": wall,
        "requests_per_s": n / wall,
        "mean_wait": stats["waits"] / stats["served"],
    }))


if __name__ == "__main__":
    main()
