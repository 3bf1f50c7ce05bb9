"""Network definitions, one module per GAN generation (``zoo.models.stylegan2``, ...)."""
