-- The headers sekisho adds to a forwarded request of the bench (captured from one, 2026-11-24),
-- for scripts/system-split.sh: wrk sends them straight to the upstream to
-- measure what parsing them costs it. The assertion is a stale token; the
-- upstream of the bench does not verify it.
wrk.headers["X-Forwarded-For"] = "127.0.0.1"
wrk.headers["X-Forwarded-Host"] = "bench.gw.localhost"
wrk.headers["X-Forwarded-Proto"] = "http"
wrk.headers["X-Request-Id"] = "wgldhwxaplxiio3y"
wrk.headers["X-Sekisho-User"] = "bench"
wrk.headers["X-Sekisho-Roles"] = "staff"
wrk.headers["X-Sekisho-Class"] = "2"
wrk.headers["X-Sekisho-Assertion"] = "eyJhbGciOiJFUzI1NiIsImtpZCI6IlB1QTNOa1JXX1lpMnA4STlqSElxOFo5aTVHSTMwaFpJZjNGbWZUZFdtdlEiLCJ0eXAiOiJKV1QifQ.eyJhbXIiOlsiaHdrIiwidXNlciIsInV2Il0sImF1ZCI6WyJiZW5jaCJdLCJjbGFzcyI6IjIiLCJkZXZpY2UiOiIiLCJleHAiOjE3OTU1MzAxNzYsImlhdCI6MTc5NTUzMDExNiwiaXNzIjoiaHR0cHM6Ly9ndy5sb2NhbGhvc3QiLCJqdGkiOiJUTzFYLWVCaWRxZlhQc3kwZmUzejdnIiwicm9sZXMiOlsic3RhZmYiXSwic3ViIjoiYmVuY2giLCJ6b25lIjoiY2hvbmFpIn0.nZpMoGy_A4JZ7awKA6-iUblCouRLDquXq7sKh6rEOI3GhJh1at5wWpcDGp9rqDfjOJ0a86mK9c3UrTVSQ84Gig"
