"""``python -m zoo.data.prepare source=... dest=... [key=value ...]``: the dataset tool (zoo.apps.prepare)."""
if __name__ == "__main__":
    from zoo.apps.prepare import main

    main()
