"""The upload service's domain code. Deployed with the Lambda; no Chalice routes here."""
