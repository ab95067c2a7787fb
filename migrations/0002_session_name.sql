-- Streamwire telemetry store, schema version 2: each session row keeps the member's display
-- name (the room token's `name` claim), so reports name members as the room shows them.
-- Sessions stored by version 1 have no name (''); reports show their peer id.
ALTER TABLE sessions ADD COLUMN name TEXT NOT NULL DEFAULT '';
