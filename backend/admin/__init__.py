"""Admin power outside the API: role changes scheduled and executed through the timelock."""
