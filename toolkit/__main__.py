"""`python -m toolkit`: the same command line as `toolkit`."""

from toolkit.cli import main

if __name__ == "__main__":
    main()
