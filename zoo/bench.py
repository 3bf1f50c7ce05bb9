"""``python -m zoo.bench [model=NAME] [mode=inference|train] [key=value ...]``: the speed benchmarks
(``zoo.apps.bench``)."""
if __name__ == "__main__":
    from zoo.apps.bench import main

    main()
