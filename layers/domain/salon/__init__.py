"""Domain layer shared by every function: schemas, services and the data layer."""
