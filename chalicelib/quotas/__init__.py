"""Per-principal quotas, counted in DynamoDB (ledger.py) through a small client signed
with the service's own SigV4 (dynamodb.py). Imported only on stages with a quota: with
quotas off, no request loads this package."""
