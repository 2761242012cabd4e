"""``python -m contrastkit`` (and ``torchrun ... -m contrastkit train ...``) runs the CLI."""

from contrastkit.cli.main import main

if __name__ == "__main__":
    main()
