"""``python -m zoo.metrics ckpt=PATH metrics.names=[fid50k_full,...] [data=...]``: the metrics app
(``zoo.apps.metrics``, ``conf/metrics.yaml``)."""
if __name__ == "__main__":
    from zoo.apps.metrics import main

    main()
