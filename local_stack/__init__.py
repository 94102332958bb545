"""The whole product on a laptop: an embedded DynamoDB, the admin app, the redirect and the aggregator."""
