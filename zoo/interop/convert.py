"""``python -m zoo.interop.convert SRC DST``: an NVIDIA pickle (or rosinality / exported ``.pt``) to a
zoo checkpoint, written atomically (:func:`zoo.interop.load.convert`; the app is ``zoo.apps.convert``)."""
if __name__ == "__main__":
    from zoo.apps.convert import main

    main()
