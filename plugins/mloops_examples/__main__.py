"""``python -m mloops_examples``: write daily partitions of an example dataset (see ``cli``)."""

from mloops_examples.cli import main

# ``__package__`` tells ``python -m`` apart from Airflow's plugin loader, which executes every ``.py``
# under plugins/ not listed in plugins/.airflowignore, under its file stem (here ``__main__``).
if __name__ == "__main__" and __package__ == "mloops_examples":
    raise SystemExit(main())
