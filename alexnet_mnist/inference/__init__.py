"""Inference: loading and saving trained models, preparing image files, prediction and export."""
