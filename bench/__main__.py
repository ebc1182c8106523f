"""make bench: DAWN's figures, printed. `python -m bench [engine] [stream] [processes] [workers]` runs parts."""

import argparse
import json

from bench.engine import print_engine, run_engine
from bench.processes import print_processes, run_processes
from bench.stream import print_stream, run_stream


PARTS = ["engine", "stream", "processes", "workers"]
DEFAULT_PARTS = ["engine", "stream", "processes"]  # "workers" needs Redis


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("parts", nargs="*", metavar="part", help=f"what to measure: {', '.join(PARTS)} (default: all but workers)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1000], help="stream: client counts to try")
    parser.add_argument("--procs", type=int, default=2, help="stream: client swarm processes")
    parser.add_argument("--seconds", type=float, default=20.0, help="stream: measured window")
    parser.add_argument("--rate", type=float, default=10.0, help="stream: tick rate")
    parser.add_argument("--protocols", nargs="+", default=["json", "msgpack"], choices=["json", "msgpack"],
                        help="stream: wire protocols to compare")
    parser.add_argument("--runs", type=int, default=30, help="processes: runs timed one at a time")
    parser.add_argument("--burst", type=int, default=30, help="processes: runs posted at once")
    parser.add_argument("--json", action="store_true", help="also print the raw figures as JSON")
    args = parser.parse_args()
    if unknown := set(args.parts) - set(PARTS):
        parser.error(f"unknown part {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")
    args.parts = args.parts or DEFAULT_PARTS
    results = []
    if "engine" in args.parts:
        results.append(run_engine())
        print_engine(results[-1])
    # "stream" is DAWN embedded; "workers" the scaled shape: one uvicorn, then one Daphne worker, over Redis
    servings = ([None] if "stream" in args.parts else []) + (["uvicorn", "daphne"] if "workers" in args.parts else [])
    for worker in servings:
        for clients in args.clients:
            for protocol in args.protocols:  # side by side: the same load in JSON text, then msgpack binary
                results.append(run_stream(clients, args.procs, args.seconds, args.rate, worker=worker, protocol=protocol))
                print_stream(results[-1])
    if "processes" in args.parts:
        results.append(run_processes(args.runs, args.burst))
        print_processes(results[-1])
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
