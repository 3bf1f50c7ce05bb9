"""``python -m zoo.visualizer ckpt=PATH [ckpt2=PATH] [port=7860] [host=127.0.0.1]``: the browser
visualizer (``zoo.apps.visualizer``)."""
if __name__ == "__main__":
    from zoo.apps.visualizer import main

    main()
