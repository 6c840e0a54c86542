"""Built-in tasks: each owns one shape of recurrent model."""
