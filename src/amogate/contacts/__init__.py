"""Finding the contact amoCRM already has for a lead's person, so no duplicate is created."""
