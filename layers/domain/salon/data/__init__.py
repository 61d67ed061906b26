"""The data layer: key builders, pynamodb models and the repositories over them."""
