"""The GitHub adapter: verified webhooks in, pull-request comments and reactions out."""
