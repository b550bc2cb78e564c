"""Reads the JSON lines of the peers and prints the comparison table.

The mean wait error is |mean wait - Erlang C| / Erlang C for the model's lambda, mu, c.
"""
import json
import sys


def erlang_c_wait(lam, mu, c):
    a = lam / mu
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    pw = c * b / (c - a * (1.0 - b))
    return pw / (c * mu - lam)


def main():
    lam, mu, c = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    theory = erlang_c_wait(lam, mu, c)
    rows = [json.loads(line) for line in sys.stdin if line.strip().startswith("{")]
    simpy = next((r for r in rows if r["simulator"] == "SimPy"), None)
    print(f"M/M/{c}: lambda {lam}, mu {mu}, utilisation {lam / (c * mu):.2f}, Erlang C mean wait {theory:.6f}")
    print(f"{'simulator':<10} {'customers':>11} {'wall s':>9} {'requests/s':>13} {'mean wait':>10} {'wait error':>11} {'x SimPy':>9}")
    for r in rows:
        err = abs(r["mean_wait"] - theory) / theory
        ratio = r["requests_per_s"] / simpy["requests_per_s"] if simpy else float("nan")
        print(f"{r['simulator']:<10} {r['requests_simulated']:>11} {r['wall_s']:>9.3f} {r['requests_per_s']:>13,.0f} "
              f"{r['mean_wait']:>10.5f} {100 * err:>10.2f}% {ratio:>9.1f}")


if __name__ == "__main__":
    main()
