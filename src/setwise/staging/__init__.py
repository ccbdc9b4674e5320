"""Take a changeset in: read it, check its values, stage it in the database."""
