"""make bench: DAWN's figures, printed."""

from bench.stream import main

if __name__ == "__main__":
    main()
