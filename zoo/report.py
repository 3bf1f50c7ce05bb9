"""``python -m zoo.report SWEEP_DIR [--out DIR]``: the report of a sweep (``zoo.apps.report``)."""
if __name__ == "__main__":
    from zoo.apps.report import main

    main()
