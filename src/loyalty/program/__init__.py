"""Programme versions: validate, publish, schedule, roll back, and find the active one."""
