"""The model library: where model files live and how names resolve to them."""
