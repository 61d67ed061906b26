"""Business rules, free of HTTP: each function takes its repository as a parameter."""
