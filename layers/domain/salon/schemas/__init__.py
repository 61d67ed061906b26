"""API models: what the app sends and receives. Unknown fields are refused."""
