"""Datasets and their readers: scikit-learn's digits, MNIST and Fashion-MNIST IDX files,
CSV and NPZ tables, the training-set scaling, and image augmentation."""
