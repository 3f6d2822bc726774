"""Request and response bodies: pydantic models with camelCase JSON names and no unknown fields."""
