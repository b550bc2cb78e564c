"""Reads the JSON lines of the peers and prints the comparison table.

Each simulator may appear several times (repeats of the same seeded run): the fastest
run of each (simulator, customers) pair is kept. The mean wait error is
|mean wait - Erlang C| / Erlang C for the model's lambda, mu and c. Every simulator here is
exact in distribution, so its error is sampling noise that shrinks like 1/sqrt(customers):
more customers per second of wall time buys accuracy.
"""
import json
import sys


def erlang_c(lam, mu, c):
    """Probability of waiting and mean wait in queue of M/M/c."""
    a = lam / mu
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)  # Erlang B, recursively
    pw = c * b / (c - a * (1.0 - b))
    return pw, pw / (c * mu - lam)


def main():
    lam, mu, c = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    _, theory = erlang_c(lam, mu, c)
    best = {}
    order = []
    for line in sys.stdin:
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        key = (r["simulator"], r["requests_simulated"] // 1000)
        if key not in best:
            order.append(key)
        if key not in best or r["requests_per_s"] > best[key]["requests_per_s"]:
            best[key] = r
    rows = [best[k] for k in order]
    simpy = next((r for r in rows if r["simulator"] == "SimPy"), None)
    print(f"M/M/{c}: lambda {lam:g}, mu {mu:g}, utilisation {lam / (c * mu):.2f}, "
          f"Erlang C mean wait {theory:.6f}")
    print(f"{'simulator':<10} {'customers':>11} {'wall s':>8} {'requests/s':>13} "
          f"{'mean wait':>10} {'wait error':>11} {'x SimPy':>8}")
    for r in rows:
        err = abs(r["mean_wait"] - theory) / theory
        ratio = r["requests_per_s"] / simpy["requests_per_s"] if simpy else float("nan")
        print(f"{r['simulator']:<10} {r['requests_simulated']:>11,} {r['wall_s']:>8.3f} "
              f"{r['requests_per_s']:>13,.0f} {r['mean_wait']:>10.5f} {100 * err:>10.2f}% "
              f"{ratio:>8.1f}")
    sdsim = [r for r in rows if r["simulator"] == "sdsim"]
    if simpy and sdsim:
        fast = max(sdsim, key=lambda r: r["requests_simulated"])
        ratio = fast["requests_per_s"] / simpy["requests_per_s"]
        e_sd = abs(fast["mean_wait"] - theory) / theory
        e_py = abs(simpy["mean_wait"] - theory) / theory
        goal = "met" if ratio >= 100 and e_sd <= e_py else "NOT met"
        print(f"sdsim simulates {ratio:.0f}x as many requests per second as SimPy, with a mean wait "
              f"error of {100 * e_sd:.2f}% against SimPy's {100 * e_py:.2f}%: goal (>= 100x at equal "
              f"or better accuracy) {goal}")


if __name__ == "__main__":
    main()
